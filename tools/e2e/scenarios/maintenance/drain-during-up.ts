/**
 * Maintenance, a drain during a `pulumi up` that rolls the pods: a changed pool size rolls them; a node
 * holding an old pod is drained meanwhile; the up and the drain both succeed, and the new pods end on two
 * distinct nodes, none on the drained one.
 */
import * as assert from "node:assert/strict";
import { loadStackSettings } from "../../../../stacks/settings";
import { type KubeObject, getJson, waitFor } from "../../clients/kubectl";
import type { PulumiStack } from "../../clients/pulumi";
import type { PartContext } from "../../context";
import { type Pooler, describe, drain, observe, settled, startSampler, uncordonAll } from "./drain";
import { BOUNDS, STACK, expectClean } from "./pooler";

type ReplicaSet = KubeObject & { status?: { replicas?: number } };

export async function drainDuringUp(ctx: PartContext & { pulumi: PulumiStack }, p: Pooler): Promise<void> {
  const s = loadStackSettings(STACK);
  const before = (await settled(p, 60_000)).pods;
  const oldRevision = before[0].revision;
  const poolSize = s.pool.defaultPoolSize - 10;
  await ctx.pulumi.configSet("pool.defaultPoolSize", String(poolSize));
  const sampler = startSampler(p, { limitMs: 400_000 });
  let running: Promise<unknown> | undefined;
  try {
    const up = ctx.pulumi.run(["up", "--yes", "--skip-preview", "--policy-pack", "policy"], {
      timeoutMs: 300_000,
    });
    running = up;
    const newRs = await newReplicaSetStarted(p, oldRevision);
    const { pods } = await observe(p);
    const victim = pods.find((x) => x.revision === oldRevision && !x.terminating && x.node)?.node;
    assert.ok(victim, `a node still holds an old pod when ${newRs.metadata.name} starts (${describe(pods)})`);
    const d = await drain(p, victim, 180);
    const result = await up;
    assert.equal(
      result.code,
      0,
      `pulumi up during the drain:\n${result.output.split("\n").slice(-30).join("\n")}`,
    );
    assert.equal(d.code, 0, `drain ${victim} during the up:\n${d.output}`);
    await p.kubectl(["-n", p.namespace, "rollout", "status", `deployment/${p.deployment}`, "--timeout=120s"]);
    const after = (await settled(p, BOUNDS.readyAfterDrainMs)).pods;
    ctx.log(
      `  drain ${victim} during the up: ${(d.ms / 1000).toFixed(1)} s, ${d.pdbRefusals} PDB refusals; after: ${describe(after)}`,
    );
    assert.ok(
      after.every((x) => x.revision === newRs.metadata.labels?.["pod-template-hash"]),
      "every pod of the new revision",
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

/** Waits for the roll's new ReplicaSet (not of `oldRevision`) to have a pod. */
function newReplicaSetStarted(p: Pooler, oldRevision: string | undefined): Promise<ReplicaSet> {
  return waitFor(
    "the new ReplicaSet to have a pod",
    async () => {
      const rss = (
        await getJson<{ items: ReplicaSet[] }>(p.kubectl, ["rs", "-n", p.namespace, "-l", p.selector])
      ).items;
      return rss.find(
        (r) => r.metadata.labels?.["pod-template-hash"] !== oldRevision && (r.status?.replicas ?? 0) >= 1,
      );
    },
    240_000,
    250,
  );
}
