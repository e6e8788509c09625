/**
 * Issue 12, part 1, on the real API server: the offline render as a GitOps source. Render A (prod), B
 * (another pool size and processesPerPod) and C (B in monitoring mode plain), applied one over the other
 * with the commands the README documents (tools/offline/gitops.ts builds them), counting the objects per
 * kind after each apply: exactly what the render holds, nothing left behind. A negative control (no prune)
 * shows that the count can fail; the patches of the backend's objects are applied last.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { FIELD_MANAGER } from "../../components/backend-route";
import { type Command, APPLYSET_PARENT, countNames, kubectlCommands, kubectlType } from "../render/gitops";
import { RENDER_SET_LABEL } from "../../testing/manifests";
import { applyFixtures, backendNamespace } from "./fixtures";
import { type KubeObject, getJson, kubectlRaw } from "./kube";
import { type Render, render } from "./renders";
import type { Timings } from "./maintenance";
import type { World } from "./world";
import { loadStackSettings } from "../../stacks/settings";

const STACK = "prod";
const B_SETTINGS = {
  "pgbouncer.processesPerPod": "2",
  "pool.maxDbConnections": "25",
  "pool.defaultPoolSize": "25",
};
const C_SETTINGS = { ...B_SETTINGS, "monitoring.mode": "plain" };
const MONITORING_ALLOWLIST = [
  "monitoring.coreos.com/v1/PodMonitor",
  "monitoring.coreos.com/v1/PrometheusRule",
];

export interface GitOpsContext {
  readonly world: World;
  readonly log: (line: string) => void;
}

/** type -> the names of that type in the render. */
function namesOf(r: Render): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const o of r.objects)
    m.set(kubectlType(o), [...(m.get(kubectlType(o)) ?? []), o.metadata.name].sort());
  return m;
}

export async function runGitOps(ctx: GitOpsContext): Promise<Timings> {
  const timings: Timings = [];
  const s = loadStackSettings(STACK);
  const ns = s.namespace;
  const k = ctx.world.kubectl;
  const log = ctx.log;
  const tools = ctx.world.env.PATH;
  const run = async (c: Command, what: string, quiet = false) => {
    const raw = kubectlRaw("kubectl", ctx.world.kubeconfig, { PATH: tools, ...c.env });
    if (!quiet)
      log(
        `$ ${Object.entries(c.env)
          .map(([a, b]) => `${a}=${b} `)
          .join("")}${c.argv.join(" ")}`,
      );
    const r = await raw(c.argv.slice(1), { timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${what}: ${c.argv.join(" ")}\n${r.stderr}`);
    return r.stdout;
  };
  const timed = async (name: string, f: () => Promise<void>) => {
    const t = Date.now();
    log(`\n[gitops] ${name}`);
    await f();
    timings.push([name, (Date.now() - t) / 1000]);
    log(`[gitops] ${name}: passed in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  };

  // A Pulumi stack in the same namespace owns objects of the same names: one owner per namespace (README).
  const found = await ctx.world.kubectlRaw(["get", "deployment", "pgbouncer", "-n", ns, "-o", "json"]);
  if (found.code === 0) {
    const labels = (JSON.parse(found.stdout) as KubeObject).metadata.labels ?? {};
    if (labels[RENDER_SET_LABEL] === undefined) {
      throw new Error(`gitops: namespace ${ns} holds a pooler that is not a render's (a Pulumi stack?)`);
    }
  }
  await applyFixtures(k, s);

  const dir = path.join(ctx.world.dir, "gitops");
  const t0 = Date.now();
  const [A, B, C] = await Promise.all([
    render(STACK, path.join(dir, "A")),
    render(STACK, path.join(dir, "B"), B_SETTINGS),
    render(STACK, path.join(dir, "C"), C_SETTINGS),
  ]);
  timings.push(["three renders", (Date.now() - t0) / 1000]);
  const allTypes = [...new Set([A, B, C].flatMap((r) => Object.keys(r.index.gitops.objectCounts)))];
  const cmds = (r: Render) => kubectlCommands(r.index.gitops, r.dir, allTypes);

  // What the renders differ in: A and B have the same kinds and names but for the hashed ConfigMap/Secret.
  assert.deepEqual(A.index.gitops.objectCounts, B.index.gitops.objectCounts, "A and B hold the same kinds");
  const [nA, nB] = [namesOf(A), namesOf(B)];
  for (const [type, names] of nA) {
    const same = JSON.stringify(names) === JSON.stringify(nB.get(type));
    assert.equal(
      same,
      !["configmap", "secret"].includes(type),
      `${type}: names ${names.join()} vs ${(nB.get(type) ?? []).join()}`,
    );
  }
  assert.ok(!("podmonitor.monitoring.coreos.com" in C.index.gitops.objectCounts), "C has no PodMonitor");

  const counted = async (): Promise<Record<string, number>> =>
    countNames(await run(cmds(A).count, "count", true));
  const names = async (type: string): Promise<string[]> =>
    (await run(cmds(A).count, "count", true))
      .split("\n")
      .filter((l) => l.startsWith(`${type}/`))
      .map((l) => l.slice(type.length + 1))
      .sort();
  const expectExactly = async (r: Render, what: string) => {
    const got = await counted();
    log(`  ${what}: ${JSON.stringify(got)}`);
    assert.deepEqual(got, r.index.gitops.objectCounts, `${what}: one of each object of the render`);
    for (const [type, want] of namesOf(r))
      assert.deepEqual(await names(type), want, `${what}: ${type} names`);
    // The Deployment mounts what is there: the prune never removed the ConfigMap or Secret it references.
    const dep = await getJson<
      KubeObject & {
        spec: { template: { spec: { volumes?: Record<string, { name?: string; secretName?: string }>[] } } };
      }
    >(k, ["deployment", "pgbouncer", "-n", ns]);
    for (const v of dep.spec.template.spec.volumes ?? []) {
      if (v.configMap)
        assert.ok(
          (await names("configmap")).includes(String(v.configMap.name)),
          `${what}: mounted ConfigMap exists`,
        );
      if (v.secret)
        assert.ok(
          (await names("secret")).includes(String(v.secret.secretName)),
          `${what}: mounted Secret exists`,
        );
    }
  };
  const clean = async () => {
    const types = allTypes.join(",");
    await ctx.world.kubectl(["delete", types, "-n", ns, "-l", A.index.gitops.selector, "--wait=false"]);
    await ctx.world.kubectl(["delete", "secret", APPLYSET_PARENT, "-n", ns, "--ignore-not-found"]);
    await ctx.world.kubectl([
      "delete",
      "pods",
      "-n",
      ns,
      "-l",
      "app.kubernetes.io/name=pgbouncer",
      "--grace-period=0",
      "--force",
    ]);
    assert.deepEqual(await counted(), {}, "clean: no object of the render set left");
  };

  try {
    await timed("sequence 1: server-side apply with ApplySet prune, A -> B -> C -> A", async () => {
      await run(cmds(A).applySet, "apply A");
      await expectExactly(A, "after A");
      const outB = await run(cmds(B).applySet, "apply B");
      await expectExactly(B, "after B");
      for (const type of ["configmap", "secret"]) {
        for (const old of nA.get(type) ?? []) {
          assert.match(outB, new RegExp(`${type}/${old} pruned`), `kubectl names the pruned ${type}/${old}`);
        }
      }
      await run(cmds(C).applySet, "apply C");
      await expectExactly(C, "after C (PodMonitor and PrometheusRule pruned)");
      await run(cmds(A).applySet, "apply A again");
      await expectExactly(A, "after A again (C's rules ConfigMap pruned)");
      const parent = await getJson(k, ["secret", APPLYSET_PARENT, "-n", ns]);
      const kinds = parent.metadata.annotations?.["applyset.kubernetes.io/contains-group-kinds"] ?? "";
      log(`  ApplySet parent's contains-group-kinds: ${kinds}`);
      for (const kind of ["ConfigMap", "Deployment.apps", "PodMonitor.monitoring.coreos.com"]) {
        assert.ok(kinds.split(",").includes(kind), `the ApplySet parent remembers ${kind}`);
      }
      const dep = await getJson(k, ["deployment", "pgbouncer", "-n", ns]);
      assert.ok(dep.metadata.labels?.["applyset.kubernetes.io/part-of"], "applied objects carry part-of");
    });
    await clean();

    await timed(
      "sequence 2: client-side apply with the label prune, A -> B -> C (-> C + monitoring kinds)",
      async () => {
        // The README: kubectl refuses the label prune together with --server-side, hence a client-side apply.
        const ssaLabel = cmds(A).labelPrune.argv.slice(1);
        const refused = await ctx.world.kubectlRaw([ssaLabel[0], "--server-side", ...ssaLabel.slice(1)]);
        log(`  --server-side --prune -l: exit ${refused.code}: ${refused.stderr.trim()}`);
        assert.notEqual(refused.code, 0, "kubectl refuses --prune -l with --server-side");
        assert.match(refused.stderr, /server-side apply/);
        assert.deepEqual(await counted(), {}, "and applies nothing");
        await run(cmds(A).labelPrune, "label-prune apply A");
        await expectExactly(A, "after A");
        // The README: a client-side apply copies each object, the Secret included, into an annotation.
        const secret = await getJson(k, ["secret", (await names("secret"))[0], "-n", ns]);
        const lastApplied =
          secret.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"] ?? "";
        assert.match(
          lastApplied,
          /"(string)?[dD]ata":\{[^}]*"userlist\.txt"/,
          "the Secret's data is in last-applied-configuration",
        );
        await run(cmds(B).labelPrune, "label-prune apply B");
        await expectExactly(B, "after B");
        await run(cmds(C).labelPrune, "label-prune apply C");
        const left = await counted();
        log(`  after C with C's allowlist only: ${JSON.stringify(left)}`);
        assert.deepEqual(
          left,
          {
            ...C.index.gitops.objectCounts,
            "podmonitor.monitoring.coreos.com": 1,
            "prometheusrule.monitoring.coreos.com": 1,
          },
          "C's allowlist lacks the monitoring kinds: the PodMonitor and PrometheusRule stay (the README says so)",
        );
        const withMonitoring = cmds(C).labelPrune;
        const i = withMonitoring.argv.indexOf("-n");
        await run(
          {
            env: withMonitoring.env,
            argv: [
              ...withMonitoring.argv.slice(0, i),
              ...MONITORING_ALLOWLIST.map((a) => `--prune-allowlist=${a}`),
              ...withMonitoring.argv.slice(i),
            ],
          },
          "label-prune apply C with the monitoring kinds",
        );
        await expectExactly(C, "after C with the monitoring kinds allowed");
      },
    );
    await clean();

    await timed(
      "negative control: A then B without a prune leaves the old ConfigMap and Secret",
      async () => {
        const noPrune = (r: Render): Command => {
          const c = cmds(r).applySet;
          return { env: {}, argv: c.argv.filter((a) => a !== "--prune" && !a.startsWith("--applyset=")) };
        };
        await run(noPrune(A), "apply A without prune");
        await run(noPrune(B), "apply B without prune");
        const got = await counted();
        const union: Record<string, number> = {};
        for (const [type, names] of nA) union[type] = new Set([...names, ...(nB.get(type) ?? [])]).size;
        log(`  without prune: ${JSON.stringify(got)}`);
        assert.deepEqual(got, union, "the union of both renders' names");
        assert.notDeepEqual(got, B.index.gitops.objectCounts, "so the count can fail");
        assert.equal(got.configmap, 2);
        assert.equal(got.secret, 2);
      },
    );
    await clean();

    await timed("the patches of the backend's objects", async () => {
      await run(cmds(A).patches, "apply patches");
      const bns = backendNamespace(s);
      const cm = await getJson<KubeObject & { data: Record<string, string> }>(k, [
        "configmap",
        s.backend.configMapName,
        "-n",
        bns,
        "--show-managed-fields",
      ]);
      assert.equal(
        cm.data[s.backend.hostKey],
        A.index.outputs.dbHost,
        "DB_HOST = the render's dbHost output",
      );
      assert.equal(
        cm.data[s.backend.portKey],
        String(A.index.outputs.dbPort),
        "DB_PORT = the render's dbPort",
      );
      const mine = (cm.metadata.managedFields ?? []).find((m) => m.manager === FIELD_MANAGER);
      const keys = Object.keys((mine?.fieldsV1 as Record<string, Record<string, unknown>>)?.["f:data"] ?? {});
      assert.deepEqual(keys.sort(), [`f:${s.backend.hostKey}`, `f:${s.backend.portKey}`].sort());
      assert.equal(
        cm.metadata.labels?.[RENDER_SET_LABEL],
        undefined,
        "no render-set label on a patched object",
      );
      const dep = await getJson(k, ["deployment", s.backend.deploymentName, "-n", bns]);
      assert.equal(dep.metadata.labels?.[RENDER_SET_LABEL], undefined);
      log(
        `  plain annotations kubectl wrote onto backend-config: ${Object.keys(cm.metadata.annotations ?? {})
          .filter((a) => a.startsWith("pulumi.com/"))
          .join(", ")}`,
      );
    });
  } finally {
    await clean().catch((e: unknown) => log(`gitops: clean-up failed: ${String(e)}`));
    // The patches took DB_HOST/DB_PORT over: give the backend's objects back as the fixtures made them.
    await ctx.world.kubectlRaw([
      "delete",
      "configmap",
      s.backend.configMapName,
      "-n",
      backendNamespace(s),
      "--ignore-not-found",
    ]);
    await applyFixtures(k, s);
  }
  return timings;
}
