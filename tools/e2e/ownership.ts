/**
 * Issue 12, part 3, with the real engine: field ownership of the backend's `DB_HOST`/`DB_PORT` between the
 * backend team's own applies (kubectl, its default field manager) and the pooler's patch (`pulumi up`),
 * step by step as docs/runbook.md ("Field ownership") tells it: their apply, our `up`, their re-apply (a
 * conflict), then the runbook's two recipes (drop the two keys; hand the values over), its warning about
 * `--force-conflicts` and the `--refresh` that repairs it, and the client-side team's variant.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { FIELD_MANAGER } from "../../components/backend-route";
import type { StackSettings } from "../../stacks/settings";
import { PROJECT_DIR } from "../../stacks/stack-file";
import { backendConfigMap, backendNamespace } from "./fixtures";
import { type KubeObject, getJson } from "./kube";
import type { World } from "./world";

/** kubectl's own field manager for `apply --server-side` (what the backend team gets without a flag). */
export const KUBECTL_SSA_MANAGER = "kubectl";

export interface OwnershipContext {
  readonly world: World;
  readonly s: StackSettings;
  readonly log: (line: string) => void;
  /** `pulumi up` of the stack, with extra flags (`--refresh`). */
  readonly up: (extra?: string[]) => Promise<void>;
  /** The stack's outputs. */
  readonly outputs: () => Promise<Record<string, unknown>>;
}

type ConfigMap = KubeObject & { data?: Record<string, string> };

/** The conflict message the runbook quotes in its step 3 (the first backticked phrase there). */
export function runbookConflictMessage(): string {
  const text = fs.readFileSync(path.join(PROJECT_DIR, "docs", "runbook.md"), "utf8");
  const section = text.slice(text.indexOf("### Field ownership"));
  const m = /their next apply of the same manifest fails[^`]*`([^`]+)`/.exec(section);
  if (!m) throw new Error("docs/runbook.md: no conflict message in the Field ownership section");
  return m[1];
}

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

export function ownership(ctx: OwnershipContext) {
  const { s, world, log } = ctx;
  const ns = backendNamespace(s);
  const name = s.backend.configMapName;
  const dir = path.join(world.dir, "ownership");
  fs.mkdirSync(dir, { recursive: true });
  const hostKey = s.backend.hostKey;
  const portKey = s.backend.portKey;

  /** The backend team's manifest, written as a file as they keep it; `data` overrides (undefined drops). */
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
  const live = async (): Promise<ConfigMap> =>
    getJson<ConfigMap>(world.kubectl, ["configmap", name, "-n", ns, "--show-managed-fields"]);
  const dbKeys = (cm: ConfigMap) => ({ host: cm.data?.[hostKey], port: cm.data?.[portKey] });
  const pooler = async () => {
    const out = await ctx.outputs();
    return { host: String(out.dbHost), port: String(out.dbPort) };
  };
  const direct = { host: s.database.host, port: String(s.database.port) };
  const fresh = async (clientSide: boolean) => {
    await world.kubectl(["delete", "configmap", name, "-n", ns, "--ignore-not-found"]);
    const r = await kubectl(["-n", ns, "apply", ...(clientSide ? [] : ["--server-side"]), "-f", full]);
    assert.equal(r.code, 0, r.stderr);
  };

  return {
    /** 1: their server-side apply, before the pooler: `kubectl` owns every key. */
    theirApply: async (): Promise<void> => {
      await fresh(false);
      const owners = ownersOf(await live());
      log(`  owners after their apply: ${JSON.stringify(owners)}`);
      for (const key of [hostKey, portKey, "LOG_LEVEL"]) {
        assert.ok(owners[KUBECTL_SSA_MANAGER]?.includes(key), `${KUBECTL_SSA_MANAGER} owns ${key}`);
      }
    },

    /** 2 (after the caller's `pulumi up`): the pooler owns the two keys, they keep the rest. */
    afterOurUp: async (): Promise<void> => {
      const cm = await live();
      assert.deepEqual(dbKeys(cm), await pooler(), "the patch set the pooler's host and port");
      const owners = ownersOf(cm);
      log(`  owners after our up: ${JSON.stringify(owners)}`);
      assert.deepEqual(owners[FIELD_MANAGER], [hostKey, portKey].sort());
      assert.ok(owners[KUBECTL_SSA_MANAGER]?.includes("LOG_LEVEL"), "they keep LOG_LEVEL");
      assert.ok(!owners[KUBECTL_SSA_MANAGER]?.includes(hostKey), `they lost ${hostKey}`);
    },

    /** 3..5: their re-apply conflicts; dropping the keys works; handing the values over works. */
    recipes: async (): Promise<void> => {
      const want = await pooler();
      const r = await kubectl(["-n", ns, "apply", "--server-side", "-f", full]);
      log(`  their re-apply: exit ${r.code}: ${r.stderr.trim().split("\n").join(" | ")}`);
      assert.notEqual(r.code, 0, "their re-apply of the same manifest conflicts");
      assert.ok(
        r.stderr.includes(runbookConflictMessage()),
        `the runbook's message: ${runbookConflictMessage()}`,
      );
      for (const f of [`.data.${hostKey}`, `.data.${portKey}`]) assert.ok(r.stderr.includes(f), `names ${f}`);
      assert.deepEqual(dbKeys(await live()), want, "the values are unchanged");

      const dropped = await kubectl(["-n", ns, "apply", "--server-side", "-f", withoutKeys]);
      assert.equal(dropped.code, 0, `drop the two keys: ${dropped.stderr}`);
      const afterDrop = await live();
      assert.deepEqual(dbKeys(afterDrop), want, "the keys keep the pooler's values");
      assert.equal(afterDrop.data?.LOG_LEVEL, "info");

      const handed = manifest("backend-config-handed-over.yaml", {
        [hostKey]: want.host,
        [portKey]: want.port,
      });
      const h = await kubectl(["-n", ns, "apply", "--server-side", "-f", handed]);
      assert.equal(h.code, 0, `hand the values over: ${h.stderr}`);
      const owners = ownersOf(await live());
      log(`  owners after the hand-over: ${JSON.stringify(owners)}`);
      for (const m of [FIELD_MANAGER, KUBECTL_SSA_MANAGER]) {
        assert.ok(owners[m]?.includes(hostKey), `${m} co-owns ${hostKey}`);
        assert.ok(owners[m]?.includes(portKey), `${m} co-owns ${portKey}`);
      }
    },

    /** 6: a forced apply takes the keys back; a plain `pulumi up` does not repair it, `--refresh` does. */
    forcedAndRefresh: async (): Promise<void> => {
      const f = await kubectl(["-n", ns, "apply", "--server-side", "--force-conflicts", "-f", full]);
      assert.equal(f.code, 0, f.stderr);
      assert.deepEqual(dbKeys(await live()), direct, "the forced apply set PostgreSQL's host and port");
      await ctx.up();
      const plain = dbKeys(await live());
      log(`  after a plain pulumi up: ${JSON.stringify(plain)}`);
      assert.deepEqual(plain, direct, "a plain pulumi up does not re-apply the patch (no diff in its state)");
      await ctx.up(["--refresh"]);
      assert.deepEqual(dbKeys(await live()), await pooler(), "pulumi up --refresh re-applies the patch");
    },

    /** 7: a client-side team: dropping the keys client-side deletes them; the server-side recipe keeps them. */
    clientSide: async (): Promise<void> => {
      const want = await pooler();
      await fresh(true);
      await ctx.up(["--refresh"]);
      assert.deepEqual(dbKeys(await live()), want);
      const a = await kubectl(["-n", ns, "apply", "-f", withoutKeys]);
      assert.equal(a.code, 0, a.stderr);
      const deleted = await live();
      log(`  client-side apply without the keys: ${JSON.stringify(dbKeys(deleted))}`);
      assert.deepEqual(
        dbKeys(deleted),
        { host: undefined, port: undefined },
        "client-side: the keys are deleted",
      );

      await fresh(true);
      await ctx.up(["--refresh"]);
      assert.deepEqual(dbKeys(await live()), want);
      const b = await kubectl(["-n", ns, "apply", "--server-side", "-f", withoutKeys]);
      assert.equal(b.code, 0, `the first server-side apply, without the keys: ${b.stderr}`);
      const kept = await live();
      log(`  owners after the switch to server-side: ${JSON.stringify(ownersOf(kept))}`);
      assert.deepEqual(dbKeys(kept), want, "server-side: the keys stay");
      assert.equal(kept.data?.LOG_LEVEL, "info");
    },
  };
}
