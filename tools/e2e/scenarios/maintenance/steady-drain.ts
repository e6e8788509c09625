/** Maintenance, drain in steady state: a node with a pooler pod drained, the replacement on the free node. */
import * as assert from "node:assert/strict";
import { type Pooler, describe, drain, settled, startSampler, uncordonAll } from "./drain";
import { BOUNDS, expectClean } from "./pooler";

export async function steadyDrain(p: Pooler): Promise<void> {
  const before = (await settled(p, 60_000)).pods;
  const nodes = before.map((x) => x.node ?? "");
  assert.equal(new Set(nodes).size, p.replicas, `steady state: pods on distinct nodes (${describe(before)})`);
  const free = p.nodes.filter((n) => !nodes.includes(n));
  assert.equal(free.length, 1, "one node without a pooler pod");
  const [a, b] = nodes;
  const sampler = startSampler(p, { limitMs: (BOUNDS.drainS + 60) * 1000 });
  try {
    const d = await drain(p, b, BOUNDS.drainS);
    assert.equal(d.code, 0, `drain ${b}:\n${d.output}`);
    const { ms, pods } = await settled(p, BOUNDS.readyAfterDrainMs);
    p.log(
      `  drain ${b}: ${(d.ms / 1000).toFixed(1)} s (bound ${BOUNDS.drainS} s), ${d.pdbRefusals} PDB refusals; ` +
        `${p.replicas} Ready ${(ms / 1000).toFixed(1)} s after it (bound ${BOUNDS.readyAfterDrainMs / 1000} s)`,
    );
    assert.deepEqual(
      pods.map((x) => x.node).sort(),
      [a, free[0]].sort(),
      `the replacement goes to the free node ${free[0]}, not next to the other pod (${describe(pods)})`,
    );
    expectClean(`drain ${b}`, await sampler.stop(), p.log);
  } finally {
    await sampler.stop();
    await uncordonAll(p);
  }
}
