/**
 * The machine the offline engine runs the program on: a shell set up for the stack, as the runbook asks
 * (its kubeconfig's current context the stack's pinned one, `VAULT_ADDR` and `GRAFANA_URL` unset), with
 * the kubeconfig held in memory. Tests take it apart to see the program refuse another shell.
 */
import * as yaml from "js-yaml";
import { backendReferences } from "../components/backend-route";
import type { ClusterObjectRef } from "../components/common";
import { poolerReferences } from "../components/pgbouncer";
import { type ClusterReader, type ShellEnv, apiPath, objectName } from "../components/providers";
import { parseSettings } from "../stacks/settings";
import { rawStackConfig, stackFileConfig } from "../stacks/stack-file";

/** The whole config of `stack` with `overrides` (full keys) applied, as an offline run passes it. */
export function stackConfig(
  stack: string,
  overrides: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return { ...stackFileConfig(stack), ...overrides };
}
import type { ProgramWorld } from "../stacks/program";

/** Where the offline kubeconfig "is": KUBECONFIG names it, and only the offline world's readFile has it. */
export const OFFLINE_KUBECONFIG = "/offline/.kube/config";
/** The API server every offline context names (nothing listens there: the offline engine reads no cluster). */
export const OFFLINE_SERVER = "https://kubernetes.offline.invalid:6443";

/** A kubeconfig with one context per name, each on the offline server, `current` its current context. */
export function offlineKubeconfig(contexts: readonly string[], current?: string): string {
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: contexts.map((c) => ({ name: c, cluster: { server: OFFLINE_SERVER } })),
    users: contexts.map((c) => ({ name: c, user: { token: "offline-token" } })),
    contexts: contexts.map((c) => ({ name: c, context: { cluster: c, user: c } })),
    ...(current !== undefined ? { "current-context": current } : {}),
  });
}

/**
 * The context a stack's config (every key, as the CLI passes them) pins, or undefined when its settings do
 * not parse.
 */
export function pinnedContext(config: Readonly<Record<string, string>>): string | undefined {
  try {
    return parseSettings(rawStackConfig(config)).providers.kubernetesContext;
  } catch {
    return undefined; // the program refuses the settings before it reads any kubeconfig
  }
}

export interface OfflineWorldOptions {
  /** Variables set or replaced in the shell's environment. @default none */
  readonly env?: ShellEnv;
  /** The kubeconfig's text. @default one context, the stack's pinned one, current */
  readonly kubeconfig?: string;
  /**
   * The objects the stack names in its cluster that are not there, as messages name them (`ConfigMap
   * clipper/postgres-ca`). @default none: every one is there, with the keys it needs
   */
  readonly missing?: readonly string[];
  /** The cluster itself, replacing the offline one. @default the stack's objects (see `missing`) */
  readonly cluster?: ClusterReader;
}

/** An object as the API server would answer a GET of it, holding the keys the stack needs. */
function offlineObject(ref: ClusterObjectRef): Record<string, unknown> {
  return {
    kind: ref.kind,
    metadata: { name: ref.name, ...(ref.namespace !== undefined ? { namespace: ref.namespace } : {}) },
    ...(ref.keys ? { data: Object.fromEntries(ref.keys.map((k) => [k, "(offline)"])) } : {}),
  };
}

/** A cluster holding exactly `objects` (by API path). */
export function offlineCluster(objects: ReadonlyMap<string, Record<string, unknown>>): ClusterReader {
  return {
    describe: `the cluster of the offline context (${OFFLINE_SERVER})`,
    get: (path) => Promise.resolve(objects.get(path)),
  };
}

/** The objects a stack whose whole config is `config` names in its cluster; none when it does not parse. */
export function referencedObjects(config: Readonly<Record<string, string>>): ClusterObjectRef[] {
  try {
    const s = parseSettings(rawStackConfig(config));
    return [...poolerReferences(s), ...backendReferences(s.backend, s.namespace)];
  } catch {
    return [];
  }
}

/** The shell of an offline run of a stack whose whole config is `config`. */
export function offlineWorld(
  config: Readonly<Record<string, string>>,
  opts: OfflineWorldOptions = {},
): ProgramWorld {
  const context = pinnedContext(config);
  const kubeconfig = opts.kubeconfig ?? offlineKubeconfig(context ? [context] : [], context);
  const files: Readonly<Record<string, string>> = { [OFFLINE_KUBECONFIG]: kubeconfig };
  const missing = new Set(opts.missing ?? []);
  const objects = new Map(
    referencedObjects(config)
      .filter((ref) => !missing.has(objectName(ref)))
      .map((ref) => [apiPath(ref), offlineObject(ref)]),
  );
  const cluster = opts.cluster ?? offlineCluster(objects);
  return {
    env: { HOME: "/offline", KUBECONFIG: OFFLINE_KUBECONFIG, ...opts.env },
    readFile: (file) => files[file],
    cluster: () => cluster,
  };
}
