/**
 * The backend team's side of the field-ownership sequence: their ConfigMap manifest written as a file as
 * they keep it (whole, without the pooler's two keys, or with the pooler's values handed over), their
 * kubectl (its default field manager), and the reads the steps assert on: the live ConfigMap, its
 * `DB_HOST`/`DB_PORT`, who owns which key.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import type { StackSettings } from "../../../../stacks/settings";
import { type KubeObject, type KubectlResult, getJson } from "../../clients/kubectl";
import type { PartContext } from "../../context";
import { backendConfigMap, backendNamespace } from "../../fixtures";

/** kubectl's own field manager for `apply --server-side` (what the backend team gets without a flag). */
export const KUBECTL_SSA_MANAGER = "kubectl";

export interface OwnershipContext extends PartContext {
  readonly s: StackSettings;
  /** `pulumi up` of the stack, with extra flags (`--refresh`). */
  readonly up: (extra?: string[]) => Promise<void>;
  /** The stack's outputs. */
  readonly outputs: () => Promise<Record<string, unknown>>;
}

export type ConfigMap = KubeObject & { data?: Record<string, string> };

export interface DbKeys {
  readonly host?: string;
  readonly port?: string;
}

export interface BackendTeam extends OwnershipContext {
  readonly ns: string;
  readonly hostKey: string;
  readonly portKey: string;
  /** Their manifest files: the whole ConfigMap, and the one without the pooler's two keys. */
  readonly full: string;
  readonly withoutKeys: string;
  /** PostgreSQL's host and port (the backend's own values). */
  readonly direct: DbKeys;
  /** Writes their manifest with `data` overrides (undefined drops a key); returns the file. */
  manifest(file: string, data?: Record<string, string | undefined>): string;
  /** Their `kubectl <args>`, logged. */
  kubectl(args: string[]): Promise<KubectlResult>;
  /** The live ConfigMap with its managed fields. */
  live(): Promise<ConfigMap>;
  /** The pooler's host and port, from the stack outputs. */
  pooler(): Promise<DbKeys>;
  /** Deletes the ConfigMap and applies their whole manifest afresh (client-side or server-side). */
  fresh(clientSide: boolean): Promise<void>;
}

export function openBackendTeam(ctx: OwnershipContext): BackendTeam {
  const { s, world, log } = ctx;
  const ns = backendNamespace(s);
  const name = s.backend.configMapName;
  const dir = path.join(world.dir, "ownership");
  fs.mkdirSync(dir, { recursive: true });
  const hostKey = s.backend.hostKey;
  const portKey = s.backend.portKey;

  const manifest = (file: string, data: Record<string, string | undefined> = {}): string => {
    const cm = backendConfigMap(s) as { data: Record<string, string | undefined> };
    cm.data = { ...cm.data, ...data };
    for (const [k, v] of Object.entries(cm.data)) if (v === undefined) delete cm.data[k];
    const f = path.join(dir, file);
    fs.writeFileSync(f, yaml.dump(cm));
    return f;
  };
  const full = manifest("backend-config.yaml");
  const withoutKeys = manifest("backend-config-without-db-keys.yaml", {
    [hostKey]: undefined,
    [portKey]: undefined,
  });
  const kubectl = async (args: string[]) => {
    log(`$ kubectl ${args.join(" ")}`);
    return world.kubectlRaw(args);
  };
  return {
    ...ctx,
    ns,
    hostKey,
    portKey,
    full,
    withoutKeys,
    direct: { host: s.database.host, port: String(s.database.port) },
    manifest,
    kubectl,
    live: () => getJson<ConfigMap>(world.kubectl, ["configmap", name, "-n", ns, "--show-managed-fields"]),
    pooler: async () => {
      const out = await ctx.outputs();
      return { host: String(out.dbHost), port: String(out.dbPort) };
    },
    fresh: async (clientSide: boolean) => {
      await world.kubectl(["delete", "configmap", name, "-n", ns, "--ignore-not-found"]);
      const r = await kubectl(["-n", ns, "apply", ...(clientSide ? [] : ["--server-side"]), "-f", full]);
      assert.equal(r.code, 0, r.stderr);
    },
  };
}

/** The ConfigMap's `DB_HOST`/`DB_PORT` (the stack's key names). */
export function dbKeys(t: BackendTeam, cm: ConfigMap): DbKeys {
  return { host: cm.data?.[t.hostKey], port: cm.data?.[t.portKey] };
}

/** manager -> the data keys it owns. */
export function ownersOf(cm: ConfigMap): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of cm.metadata.managedFields ?? []) {
    const keys = Object.keys((m.fieldsV1 as Record<string, Record<string, unknown>>)?.["f:data"] ?? {}).map(
      (f) => f.replace(/^f:/, ""),
    );
    out[m.manager] = [...(out[m.manager] ?? []), ...keys].sort();
  }
  return out;
}
