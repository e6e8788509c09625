/**
 * Node maintenance on the real control plane: node drains against kube-apiserver, kube-scheduler and the
 * controller-manager (whose node-lifecycle controller taints cordoned nodes, and whose StatefulSet and
 * disruption controllers replace the pods and keep the PDB's count), with kwok's fake nodes.
 *
 * - `runMaintenanceRender`: the rendered StatefulSet and PDB applied into namespaces of their own: the old
 *   spread strands a pod (the negative case, so the test can fail), the fixed one does not; a drain in
 *   steady state, a drain next to a cordoned node, and a drain next to a full node (the reason for the
 *   soft default: a hard spread leaves the pod Pending there).
 * - `runMaintenanceLive`: the same drains on the StatefulSet a real `pulumi up` made, plus the hard spread
 *   (`pgbouncer.spreadWhenUnsatisfiable: DoNotSchedule`) and a drain during a `pulumi up` that rolls the pods.
 *
 * Every drain runs under the sampler of drain.ts: at least one pod Ready at every sample, the PDB allows
 * nothing while only one is, and never more pods than replicas (a StatefulSet does not surge: a pod's
 * replacement is made once it has gone). This is API state: kwok marks the pods Ready and deletes a
 * terminating one 1 to 2 s after its deletion starts (world/kwok.ts); no container runs, so neither the
 * preStop hook, the drain of PgBouncer nor the grace period is exercised (the fleet tests of npm test run
 * the pod's drain on the real binaries).
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { STATEFULSET_NAME, selectorLabels, spreadConstraints } from "../../../../components/pgbouncer";
import { loadStackSettings } from "../../../../stacks/settings";
import { type Timings, timed } from "../../../common";
import type { PulumiStack } from "../../clients/pulumi";
import type { PartContext } from "../../context";
import { namespaceManifest } from "../../fixtures";
import { MAINTENANCE_POOL } from "../../world/kwok";
import { type RenderedObject, objectOf, render } from "../renders";
import { cordonedDrain } from "./cordoned-drain";
import { drainDuringUp } from "./drain-during-up";
import { fullNodeDrain } from "./full-node-drain";
import {
  STACK,
  applyObjects,
  dropNamespace,
  intoNamespace,
  onMaintenancePool,
  liveSpread,
  policyReports,
  pooler,
} from "./pooler";
import { steadyDrain } from "./steady-drain";
import { strandingDrain } from "./stranding-drain";

/**
 * The render's StatefulSet and PDB (what the drain needs; kwok mounts nothing, so no ConfigMap or Secret),
 * on the maintenance pool of fake nodes, so that its drains run beside the scenarios.
 */
async function renderedPooler(ctx: PartContext): Promise<RenderedObject[]> {
  const r = await render(STACK, path.join(ctx.world.dir, "maintenance-render"));
  return onMaintenancePool([objectOf(r, "StatefulSet"), objectOf(r, "PodDisruptionBudget")]);
}

/** The offline half: everything that needs no `pulumi up`. */
export async function runMaintenanceRender(ctx: PartContext): Promise<Timings> {
  const timings: Timings = [];
  const step = (name: string, f: () => Promise<void>) => timed(`[maintenance] ${name}`, f, ctx.log, timings);
  const objects = await renderedPooler(ctx);
  await step("negative: the old spread strands a pod next to a cordoned node", () =>
    strandingDrain(ctx, objects),
  );
  const ns = "clipper-drain";
  const p = pooler(ctx, ns, MAINTENANCE_POOL.nodes);
  await applyObjects(ctx, [namespaceManifest(ns)]);
  try {
    await applyObjects(ctx, intoNamespace(objects, ns));
    assert.deepEqual(await policyReports(p), [], "the policy pack accepts the rendered spread");
    await step("render: drain in steady state", () => steadyDrain(p));
    await step("render: cordon all but one, then drain", () => cordonedDrain(p));
  } finally {
    await dropNamespace(ctx, ns);
  }
  await step("render: hard spread next to a full node (why ScheduleAnyway)", () =>
    fullNodeDrain(ctx, objects),
  );
  return timings;
}

/**
 * The live half, on the stack `pulumi` has already brought up: the drains of the render on the StatefulSet
 * the provider made; the hard spread by `pulumi up`; a drain during a `pulumi up` that rolls the pods.
 */
export async function runMaintenanceLive(
  ctx: PartContext & { pulumi: PulumiStack; up: (extra?: string[]) => Promise<void> },
): Promise<Timings> {
  const timings: Timings = [];
  const step = (name: string, f: () => Promise<void>) => timed(`[maintenance] ${name}`, f, ctx.log, timings);
  const s = loadStackSettings(STACK);
  const p = pooler(ctx, s.namespace);
  const selector = selectorLabels(STATEFULSET_NAME);
  assert.deepEqual(await liveSpread(p), spreadConstraints(s.workload, selector), "live spread = rendered");
  assert.deepEqual(await policyReports(p), [], "the policy pack accepts the live StatefulSet");
  await step("live: drain in steady state", () => steadyDrain(p));
  await step("live: cordon all but one, then drain", () => cordonedDrain(p));
  await step("live: the same with spreadWhenUnsatisfiable DoNotSchedule", async () => {
    await ctx.pulumi.configSet("pgbouncer.spreadWhenUnsatisfiable", "DoNotSchedule");
    await ctx.up(["--refresh"]);
    const hard = spreadConstraints({ ...s.workload, spreadWhenUnsatisfiable: "DoNotSchedule" }, selector);
    assert.deepEqual(await liveSpread(p), hard, "one entry: the provider dropped the ScheduleAnyway entry");
    assert.deepEqual(await policyReports(p), [], "the policy pack accepts the hard spread (Honor)");
    await cordonedDrain(p);
  });
  await step("live: drain during a pulumi up that rolls the pods", async () => {
    // Back to the default spread in the same `up`: the pods roll for the pool size and the spread.
    await ctx.pulumi.ok(["config", "rm", "--path", "pgbouncer.spreadWhenUnsatisfiable"]);
    await drainDuringUp(ctx, p);
    assert.deepEqual(await liveSpread(p), spreadConstraints(s.workload, selector), "back to the soft spread");
  });
  return timings;
}
