/**
 * Maintenance, cordon all but one, then drain (the failure the spread fix is for): with every node but one
 * cordoned, a drain of the other pooler node puts the replacement next to the remaining pod, and the
 * scheduler never reports it unschedulable; then the runbook's respread (a rollout restart).
 */
import * as assert from "node:assert/strict";
import {
  type Pooler,
  cordon,
  describe,
  drain,
  failedScheduling,
  settled,
  startSampler,
  uncordonAll,
} from "./drain";
import { BOUNDS, expectClean } from "./pooler";

export async function cordonedDrain(p: Pooler): Promise<void> {
  const before = (await settled(p, 60_000)).pods;
  const nodes = before.map((x) => x.node ?? "");
  assert.equal(new Set(nodes).size, p.replicas, `before: pods on distinct nodes (${describe(before)})`);
  const [a, x] = nodes;
  const third = p.nodes.filter((n) => !nodes.includes(n));
  const sampler = startSampler(p, { limitMs: (BOUNDS.drainS + 60) * 1000 });
  try {
    for (const n of third) await cordon(p, n);
    const t = Date.now();
    const d = await drain(p, x, BOUNDS.drainS);
    assert.equal(d.code, 0, `drain ${x}:\n${d.output}`);
    const { ms, pods } = await settled(p, BOUNDS.readyAfterDrainMs);
    p.log(
      `  drain ${x} next to cordoned ${third.join(",")}: ${(d.ms / 1000).toFixed(1)} s, ${d.pdbRefusals} PDB ` +
        `refusals; ${p.replicas} Ready ${(ms / 1000).toFixed(1)} s after it`,
    );
    assert.deepEqual(
      pods.map((y) => y.node),
      [a, a],
      `both pods on ${a}, the one usable node (${describe(pods)})`,
    );
    assert.deepEqual(await failedScheduling(p, t), [], "no FailedScheduling event for the pooler");
    expectClean(`drain ${x} next to a cordoned node`, await sampler.stop(), p.log);
  } finally {
    await sampler.stop();
    await uncordonAll(p);
  }
  await respread(p);
}

/** The runbook's respread: a rollout restart puts the two pods on two nodes again. */
async function respread(p: Pooler): Promise<void> {
  await p.kubectl(["-n", p.namespace, "rollout", "restart", `statefulset/${p.workload}`]);
  await p.kubectl([
    "-n",
    p.namespace,
    "rollout",
    "status",
    `statefulset/${p.workload}`,
    `--timeout=${BOUNDS.respreadMs / 1000}s`,
  ]);
  const after = (await settled(p, BOUNDS.respreadMs)).pods;
  assert.equal(
    new Set(after.map((y) => y.node)).size,
    p.replicas,
    `after a rollout restart the pods are on distinct nodes again (${describe(after)})`,
  );
}
