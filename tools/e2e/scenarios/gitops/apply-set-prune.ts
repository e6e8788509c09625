/**
 * GitOps sequence 1: server-side apply with the ApplySet prune, A -> B -> C -> A: after each apply exactly
 * the render's objects; kubectl names what it pruned; the ApplySet parent remembers every kind.
 */
import * as assert from "node:assert/strict";
import { APPLYSET_PARENT } from "../../../render/gitops";
import { getJson } from "../../clients/kubectl";
import type { GitOpsRun } from "./gitops-run";

export async function applySetPrune(g: GitOpsRun): Promise<void> {
  const { A, B, C, nA, nB, k, ns } = g;
  await g.run(g.cmds(A).applySet, "apply A");
  await g.expectExactly(A, "after A");
  const outB = await g.run(g.cmds(B).applySet, "apply B");
  await g.expectExactly(B, "after B");
  for (const type of ["configmap", "secret"]) {
    // A's names by content (the exporters' Secret); every other ConfigMap and Secret keeps its name in B.
    for (const old of (nA.get(type) ?? []).filter((n) => !(nB.get(type) ?? []).includes(n))) {
      assert.match(outB, new RegExp(`${type}/${old} pruned`), `kubectl names the pruned ${type}/${old}`);
    }
  }
  await g.run(g.cmds(C).applySet, "apply C");
  await g.expectExactly(C, "after C (PodMonitor and PrometheusRule pruned)");
  await g.run(g.cmds(A).applySet, "apply A again");
  await g.expectExactly(A, "after A again (C's rules ConfigMap pruned)");
  const parent = await getJson(k, ["secret", APPLYSET_PARENT, "-n", ns]);
  const kinds = parent.metadata.annotations?.["applyset.kubernetes.io/contains-group-kinds"] ?? "";
  g.log(`  ApplySet parent's contains-group-kinds: ${kinds}`);
  for (const kind of ["ConfigMap", "StatefulSet.apps", "PodMonitor.monitoring.coreos.com"]) {
    assert.ok(kinds.split(",").includes(kind), `the ApplySet parent remembers ${kind}`);
  }
  const dep = await getJson(k, ["statefulset", "pgbouncer", "-n", ns]);
  assert.ok(dep.metadata.labels?.["applyset.kubernetes.io/part-of"], "applied objects carry part-of");
}
