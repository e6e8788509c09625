/**
 * Maintenance, a drain during a `pulumi up` that rolls the pods: a changed CPU request (a pod template
 * change: a reload cannot apply it) rolls them, one at a time, highest ordinal first, each replacement made
 * once its pod has gone (a StatefulSet does not surge); a node holding a pod of the old revision is drained
 * meanwhile. The PDB (`maxUnavailable: 1`) and the roll (`maxUnavailable: 1`) each take one pod out at most:
 * the drain waits for the rolled pod, the roll for the evicted one. The up and the drain both succeed, and
 * the new pods end on two distinct nodes, none on the drained one. The sampler holds throughout: one pod
 * Ready at least, never more pods than replicas.
 */
import * as assert from "node:assert/strict";
import { loadStackSettings } from "../../../../stacks/settings";
import { type KubeObject, getJson, waitFor } from "../../clients/kubectl";
import type { PulumiStack } from "../../clients/pulumi";
import type { PartContext } from "../../context";
import { type Pooler, describe, drain, observe, settled, startSampler, uncordonAll } from "./drain";
import { BOUNDS, STACK, expectClean } from "./pooler";

type StatefulSet = KubeObject & { status?: { currentRevision?: string; updateRevision?: string } };

/** The setting the up changes: the PgBouncer containers' CPU request, which only a new pod applies. */
export const ROLLING_SETTING = "pgbouncer.resources.cpuRequest";

export async function drainDuringUp(ctx: PartContext & { pulumi: PulumiStack }, p: Pooler): Promise<void> {
  const s = loadStackSettings(STACK);
  const before = (await settled(p, 60_000)).pods;
  const oldRevision = before[0].revision;
  const milli = Number(/^(\d+)m$/.exec(s.workload.resources.cpuRequest)?.[1] ?? "NaN");
  assert.ok(Number.isFinite(milli), `cpuRequest ${s.workload.resources.cpuRequest} in millicores`);
  await ctx.pulumi.configSet(ROLLING_SETTING, `${milli + 20}m`);
  const sampler = startSampler(p, { limitMs: 400_000 });
  let running: Promise<unknown> | undefined;
  try {
    const up = ctx.pulumi.run(["up", "--yes", "--skip-preview", "--refresh", "--policy-pack", "policy"], {
      timeoutMs: 300_000,
    });
    running = up;
    const newRevision = await rollStarted(p, oldRevision);
    const { pods } = await observe(p);
    const victim = pods.find((x) => x.revision === oldRevision && !x.terminating && x.node)?.node;
    assert.ok(
      victim,
      `a node still holds a pod of the old revision when ${newRevision} starts (${describe(pods)})`,
    );
    const d = await drain(p, victim, 180);
    const result = await up;
    assert.equal(
      result.code,
      0,
      `pulumi up during the drain:\n${result.output.split("\n").slice(-30).join("\n")}`,
    );
    assert.equal(d.code, 0, `drain ${victim} during the up:\n${d.output}`);
    await p.kubectl(["-n", p.namespace, "rollout", "status", `statefulset/${p.workload}`, "--timeout=120s"]);
    const after = (await settled(p, BOUNDS.readyAfterDrainMs)).pods;
    ctx.log(
      `  drain ${victim} during the up: ${(d.ms / 1000).toFixed(1)} s, ${d.pdbRefusals} PDB refusals; after: ${describe(after)}`,
    );
    assert.ok(
      after.every((x) => x.revision === newRevision),
      `every pod of the new revision ${newRevision}`,
    );
    assert.equal(new Set(after.map((x) => x.node)).size, p.replicas, "on distinct nodes (2 usable remain)");
    assert.ok(!after.some((x) => x.node === victim), `none on the drained ${victim}`);
    expectClean(`drain ${victim} during pulumi up`, await sampler.stop(), ctx.log);
  } finally {
    // On a failure, the `pulumi up` still runs: wait for it (it is bounded) rather than leave it behind.
    await running;
    await sampler.stop();
    await uncordonAll(p);
  }
}

/**
 * Waits for the roll to start: the StatefulSet's update revision differs from `oldRevision` and a pod of it
 * exists (the highest ordinal's replacement). Returns the new revision (the pods' label value).
 */
async function rollStarted(p: Pooler, oldRevision: string | undefined): Promise<string> {
  return waitFor(
    "the roll's first pod of the new revision",
    async () => {
      const st = await getJson<StatefulSet>(p.kubectl, ["statefulset", p.workload, "-n", p.namespace]);
      const update = st.status?.updateRevision;
      if (!update || st.status?.currentRevision === update) return undefined;
      // A StatefulSet's pods carry the ControllerRevision's name itself.
      if (update === oldRevision) return undefined;
      const { pods } = await observe(p);
      return pods.some((x) => x.revision === update) ? update : undefined;
    },
    240_000,
    250,
  );
}
