/**
 * The machine the offline engine runs the program on: a shell set up for the stack, as the runbook asks
 * (its kubeconfig's current context the stack's pinned one, `VAULT_ADDR` and `GRAFANA_URL` unset), with
 * the kubeconfig held in memory. Tests take it apart to see the program refuse another shell.
 */
import * as yaml from "js-yaml";
import type { ShellEnv } from "../components/providers";
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
}

/** The shell of an offline run of a stack whose whole config is `config`. */
export function offlineWorld(
  config: Readonly<Record<string, string>>,
  opts: OfflineWorldOptions = {},
): ProgramWorld {
  const context = pinnedContext(config);
  const kubeconfig = opts.kubeconfig ?? offlineKubeconfig(context ? [context] : [], context);
  const files: Readonly<Record<string, string>> = { [OFFLINE_KUBECONFIG]: kubeconfig };
  return {
    env: { HOME: "/offline", KUBECONFIG: OFFLINE_KUBECONFIG, ...opts.env },
    readFile: (file) => files[file],
  };
}
