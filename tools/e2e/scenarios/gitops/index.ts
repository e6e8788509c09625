/**
 * The offline render as a GitOps source, on the real API server, no Pulumi: render A (prod), B (another
 * pool size and processesPerPod) and C (B in monitoring mode plain), applied one over the other with the
 * commands the README documents (tools/render/gitops.ts builds them), counting the objects per kind after
 * each apply: exactly what the render holds, nothing left behind. A negative control (no prune) shows that
 * the count can fail; the patches of the backend's objects are applied last.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { type Timings, timed } from "../../../common";
import { RENDER_SET_LABEL } from "../../../../testing/manifests";
import type { KubeObject } from "../../clients/kubectl";
import type { PartContext } from "../../context";
import { applyFixtures, backendNamespace } from "../../fixtures";
import { applySetPrune } from "./apply-set-prune";
import { backendPatches } from "./backend-patches";
import { type GitOpsRun, type Renders, gitopsSettings, openGitOpsRun, renderThree } from "./gitops-run";
import { labelPrune } from "./label-prune";
import { noPrune } from "./no-prune";

/** The sequences, in order; the render set is cleaned after each. */
const SEQUENCES: readonly [name: string, run: (g: GitOpsRun) => Promise<void>][] = [
  ["sequence 1: server-side apply with ApplySet prune, A -> B -> C -> A", applySetPrune],
  ["sequence 2: client-side apply with the label prune, A -> B -> C (-> C + monitoring kinds)", labelPrune],
  ["negative control: A then B without a prune leaves the old exporters' Secret", noPrune],
];

export async function runGitOps(ctx: PartContext): Promise<Timings> {
  const timings: Timings = [];
  const s = gitopsSettings();
  const { world, log } = ctx;
  await refuseAPulumiStack(ctx, s.namespace);
  await applyFixtures(world.kubectl, s);

  const renders = await timed(
    "[gitops] three renders",
    () => renderThree(path.join(world.dir, "gitops")),
    log,
    timings,
  );
  expectRendersDiffer(renders);
  const g = openGitOpsRun(ctx, s, renders);
  try {
    for (const [name, run] of SEQUENCES) {
      await timed(`[gitops] ${name}`, () => run(g), log, timings);
      await g.clean();
    }
    await timed("[gitops] the patches of the backend's objects", () => backendPatches(g), log, timings);
  } finally {
    await g.clean().catch((e: unknown) => log(`gitops: clean-up failed: ${String(e)}`));
    // The patches took DB_HOST/DB_PORT over: give the backend's objects back as the fixtures made them.
    await world.kubectlRaw([
      "delete",
      "configmap",
      s.backend.configMapName,
      "-n",
      backendNamespace(s),
      "--ignore-not-found",
    ]);
    await applyFixtures(world.kubectl, s);
  }
  return timings;
}

/** A Pulumi stack in the same namespace owns objects of the same names: one owner per namespace (README). */
async function refuseAPulumiStack(ctx: PartContext, ns: string): Promise<void> {
  const found = await ctx.world.kubectlRaw(["get", "statefulset", "pgbouncer", "-n", ns, "-o", "json"]);
  if (found.code !== 0) return;
  const labels = (JSON.parse(found.stdout) as KubeObject).metadata.labels ?? {};
  if (labels[RENDER_SET_LABEL] === undefined) {
    throw new Error(`gitops: namespace ${ns} holds a pooler that is not a render's (a Pulumi stack?)`);
  }
}

/**
 * What the renders differ in: A and B have the same kinds and names but for the Secret named by its content
 * (the exporters' connection strings, which B's two processes change); the ini's ConfigMap and the auth
 * Secret keep their names, and B's apply updates them in place.
 */
function expectRendersDiffer({ A, B, C, nA, nB }: Renders): void {
  assert.deepEqual(A.index.gitops.objectCounts, B.index.gitops.objectCounts, "A and B hold the same kinds");
  for (const [type, names] of nA) {
    const same = JSON.stringify(names) === JSON.stringify(nB.get(type));
    assert.equal(same, type !== "secret", `${type}: names ${names.join()} vs ${(nB.get(type) ?? []).join()}`);
  }
  assert.ok(!("podmonitor.monitoring.coreos.com" in C.index.gitops.objectCounts), "C has no PodMonitor");
}
