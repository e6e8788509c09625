/**
 * Maintenance, why the hostname spread is ScheduleAnyway: the one usable node without a pooler pod has no
 * room. With a hard spread (Honor, as `spreadWhenUnsatisfiable: DoNotSchedule` renders it) the evicted pod
 * stays Pending; the default soft spread, applied over it, puts it next to the other pod.
 */
import * as assert from "node:assert/strict";
import { STATEFULSET_NAME, selectorLabels, spreadConstraints } from "../../../../components/pgbouncer";
import { loadStackSettings } from "../../../../stacks/settings";
import { type KubeObject, getJson, waitFor } from "../../clients/kubectl";
import type { PartContext } from "../../context";
import { namespaceManifest } from "../../fixtures";
import { MAINTENANCE_POOL } from "../../world/kwok";
import type { RenderedObject } from "../renders";
import { type Pooler, describe, drain, observe, settled, startSampler, uncordonAll } from "./drain";
import {
  BOUNDS,
  STACK,
  applyObjects,
  dropNamespace,
  expectClean,
  intoNamespace,
  policyReports,
  pooler,
} from "./pooler";

const NAMESPACE = "clipper-full-node";

export async function fullNodeDrain(ctx: PartContext, objects: readonly RenderedObject[]): Promise<void> {
  const ns = NAMESPACE;
  const p = pooler(ctx, ns, MAINTENANCE_POOL.nodes);
  const s = loadStackSettings(STACK);
  const hard = spreadConstraints(
    { ...s.workload, spreadWhenUnsatisfiable: "DoNotSchedule" },
    selectorLabels(STATEFULSET_NAME),
  );
  const filler: string[] = [];
  await applyObjects(ctx, [namespaceManifest(ns)]);
  try {
    await applyObjects(ctx, intoNamespace(objects, ns, hard));
    assert.deepEqual(await policyReports(p), [], "the policy pack allows the hard spread with Honor");
    const before = (await settled(p, 60_000)).pods;
    const nodes = before.map((x) => x.node ?? "");
    const [a, x] = nodes;
    const free = p.nodes.filter((n) => !nodes.includes(n));
    // Leave less CPU than one pooler pod requests (the render's containers, summed).
    for (const n of free) filler.push(await fill(ctx, n, 50));
    const sampler = startSampler(p, { limitMs: 180_000 });
    try {
      const t = Date.now();
      await expectPendingOnHardSpread(p, x);
      await expectSoftSpreadPlaces(ctx, p, objects, a, t);
      expectClean("drain next to a full node", await sampler.stop(), ctx.log);
    } finally {
      await sampler.stop();
      await uncordonAll(p);
    }
  } finally {
    for (const f of filler) {
      await ctx.world.kubectlRaw(["delete", "pod", f, "-n", "default", "--grace-period=0", "--force"]);
    }
    await dropNamespace(ctx, ns);
  }
}

/** Drains `x`: the evicted pod stays Pending (no CPU on the free node, the spread forbids the other). */
async function expectPendingOnHardSpread(p: Pooler, x: string): Promise<void> {
  const d = await drain(p, x, 60);
  assert.equal(d.code, 0, `drain ${x}:\n${d.output}`);
  const pending = await waitFor(
    "a pooler pod Pending on the hard spread",
    async () => (await observe(p)).pods.find((y) => !y.terminating && y.unschedulable !== undefined),
    BOUNDS.readyAfterDrainMs,
    250,
  );
  p.log(`  hard spread, free node full: ${pending.unschedulable}`);
  assert.match(pending.unschedulable ?? "", /Insufficient cpu/);
  assert.match(pending.unschedulable ?? "", /didn't match pod topology spread constraints/);
  assert.equal((await observe(p)).pdb?.disruptionsAllowed, 0, "the PDB allows nothing more");
}

/** The default soft spread applied over it: both pods Ready on `a`, next to each other. */
async function expectSoftSpreadPlaces(
  ctx: PartContext,
  p: Pooler,
  objects: readonly RenderedObject[],
  a: string,
  drainStarted: number,
): Promise<void> {
  const s = loadStackSettings(STACK);
  const fixed = spreadConstraints(s.workload, selectorLabels(STATEFULSET_NAME));
  await applyObjects(ctx, intoNamespace(objects, p.namespace, fixed));
  const { ms, pods } = await settled(p, 60_000);
  ctx.log(
    `  default soft spread: ${p.replicas} Ready ${(ms / 1000).toFixed(1)} s after the apply ` +
      `(${((Date.now() - drainStarted) / 1000).toFixed(1)} s after the drain began)`,
  );
  assert.deepEqual(
    pods.map((y) => y.node),
    [a, a],
    `both on ${a}, next to each other (${describe(pods)})`,
  );
}

/** A pod pinned to `node` (no scheduler) that takes all but `leaveMilliCpu` of its allocatable CPU. */
async function fill(ctx: PartContext, node: string, leaveMilliCpu: number): Promise<string> {
  const n = await getJson<KubeObject & { status: { allocatable: { cpu: string } } }>(ctx.world.kubectl, [
    "node",
    node,
  ]);
  const cpu = n.status.allocatable.cpu;
  const milli = cpu.endsWith("m") ? Number(cpu.slice(0, -1)) : Number(cpu) * 1000;
  const name = `e2e-filler-${node}`;
  await applyObjects(ctx, [
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "default", labels: { "clipper.io/e2e": "filler" } },
      spec: {
        nodeName: node,
        containers: [
          {
            name: "filler",
            image: "registry.k8s.io/pause:3.10",
            resources: { requests: { cpu: `${milli - leaveMilliCpu}m` } },
          },
        ],
      },
    },
  ]);
  return name;
}
