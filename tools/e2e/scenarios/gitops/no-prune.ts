/**
 * GitOps negative control: A, then B without a prune: A's exporters' Secret (named by its content) stays
 * beside B's, so the count of the other sequences can fail.
 */
import * as assert from "node:assert/strict";
import type { Command } from "../../../render/gitops";
import type { Render } from "../renders";
import type { GitOpsRun } from "./gitops-run";

export async function noPrune(g: GitOpsRun): Promise<void> {
  const { A, B, nA, nB } = g;
  const withoutPrune = (r: Render): Command => {
    const c = g.cmds(r).applySet;
    return { env: {}, argv: c.argv.filter((a) => a !== "--prune" && !a.startsWith("--applyset=")) };
  };
  await g.run(withoutPrune(A), "apply A without prune");
  await g.run(withoutPrune(B), "apply B without prune");
  const got = await g.counted();
  const union: Record<string, number> = {};
  for (const [type, names] of nA) union[type] = new Set([...names, ...(nB.get(type) ?? [])]).size;
  g.log(`  without prune: ${JSON.stringify(got)}`);
  assert.deepEqual(got, union, "the union of both renders' names");
  assert.notDeepEqual(got, B.index.gitops.objectCounts, "so the count can fail");
  // A's exporters' Secret stays beside B's; every ConfigMap keeps its name (applied over in place).
  assert.equal(got.configmap, B.index.gitops.objectCounts.configmap ?? 0);
  assert.equal(got.secret, (B.index.gitops.objectCounts.secret ?? 0) + 1);
}
