/**
 * Maintenance, the negative case: the spread this program rendered before the maintenance fix leaves the
 * evicted pod Pending next to a cordoned node, the PDB at 0 (and the policy pack reports it); the fixed
 * spread, applied over it, gets both pods Ready.
 */
import * as assert from "node:assert/strict";
import {
  STATEFULSET_NAME,
  selectorLabels,
  spreadConstraints,
  strandingSpreadConstraints,
} from "../../../../components/pgbouncer";
import { loadStackSettings } from "../../../../stacks/settings";
import { sleep } from "../../../harness/proc";
import { waitFor } from "../../clients/kubectl";
import type { PartContext } from "../../context";
import { namespaceManifest } from "../../fixtures";
import { MAINTENANCE_POOL } from "../../world/kwok";
import type { RenderedObject } from "../renders";
import {
  type Pooler,
  cordon,
  describe,
  drain,
  failedScheduling,
  observe,
  serving,
  settled,
  startSampler,
  uncordonAll,
} from "./drain";
import {
  BOUNDS,
  STACK,
  applyObjects,
  dropNamespace,
  expectClean,
  intoNamespace,
  liveSpread,
  policyReports,
  pooler,
} from "./pooler";

const NAMESPACE = "clipper-stranding";

export async function strandingDrain(ctx: PartContext, objects: readonly RenderedObject[]): Promise<void> {
  const ns = NAMESPACE;
  const p = pooler(ctx, ns, MAINTENANCE_POOL.nodes);
  const s = loadStackSettings(STACK);
  await applyObjects(ctx, [namespaceManifest(ns)]);
  try {
    await applyObjects(
      ctx,
      intoNamespace(objects, ns, strandingSpreadConstraints(s.workload, selectorLabels(STATEFULSET_NAME))),
    );
    const reports = await policyReports(p);
    assert.equal(
      reports.length,
      1,
      `the policy pack reports the live stranding spread: ${reports.join("; ")}`,
    );
    assert.match(reports[0], /nodeTaintsPolicy unset/);
    const before = (await settled(p, 60_000)).pods;
    const nodes = before.map((x) => x.node ?? "");
    assert.equal(new Set(nodes).size, p.replicas, `pods on distinct nodes (${describe(before)})`);
    const free = p.nodes.filter((n) => !nodes.includes(n));
    const [a, x] = nodes;
    const sampler = startSampler(p, { limitMs: 180_000 });
    try {
      for (const n of free) await cordon(p, n);
      await expectStranded(p, x);
      await expectFixedSpread(ctx, p, objects, a);
      expectClean("stranding drain", await sampler.stop(), ctx.log);
    } finally {
      await sampler.stop();
      await uncordonAll(p);
    }
  } finally {
    await dropNamespace(ctx, ns);
  }
}

/** Drains `x`: the evicted pod stays Pending on the spread, one replica serves, the PDB allows nothing. */
async function expectStranded(p: Pooler, x: string): Promise<void> {
  const t = Date.now();
  const d = await drain(p, x, 60);
  assert.equal(d.code, 0, `drain ${x} (the PDB allows the first eviction):\n${d.output}`);
  const pending = await waitFor(
    "a pooler pod Pending on the stranding spread",
    async () => {
      const { pods } = await observe(p);
      return pods.find((y) => !y.terminating && y.unschedulable !== undefined);
    },
    BOUNDS.readyAfterDrainMs,
    250,
  );
  p.log(
    `  stranded ${((Date.now() - t) / 1000).toFixed(1)} s after the drain began: ${pending.unschedulable}`,
  );
  assert.match(pending.unschedulable ?? "", /didn't match pod topology spread constraints/);
  assert.match(pending.unschedulable ?? "", /were unschedulable/);
  await sleep(BOUNDS.strandedForMs);
  const later = await observe(p);
  const still = later.pods.find((y) => y.name === pending.name);
  assert.ok(
    still && still.unschedulable !== undefined,
    `still Pending ${BOUNDS.strandedForMs / 1000} s later`,
  );
  assert.equal(serving(later.pods).length, 1, `one replica serves (${describe(later.pods)})`);
  assert.equal(later.pdb?.disruptionsAllowed, 0, "the PDB allows no further disruption");
  const events = await failedScheduling(p, t);
  assert.ok(
    events.some((e) => /didn't match pod topology spread constraints/.test(e)),
    `a FailedScheduling event names the spread: ${events.join("; ")}`,
  );
}

/** The fix, applied over the stranded StatefulSet: a new revision, both pods on `a`, the one usable node. */
async function expectFixedSpread(
  ctx: PartContext,
  p: Pooler,
  objects: readonly RenderedObject[],
  a: string,
): Promise<void> {
  const s = loadStackSettings(STACK);
  const fixed = spreadConstraints(s.workload, selectorLabels(STATEFULSET_NAME));
  await applyObjects(ctx, intoNamespace(objects, p.namespace, fixed));
  assert.deepEqual(await policyReports(p), [], "the policy pack accepts the fixed spread");
  assert.deepEqual(await liveSpread(p), fixed, "the live spread is exactly the rendered one");
  const { ms, pods } = await settled(p, 60_000);
  ctx.log(`  with the fixed spread: ${p.replicas} Ready ${(ms / 1000).toFixed(1)} s after the apply`);
  assert.deepEqual(
    pods.map((y) => y.node),
    [a, a],
    `both on ${a}, the one usable node (${describe(pods)})`,
  );
}
