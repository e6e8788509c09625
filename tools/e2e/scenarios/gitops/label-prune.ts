/**
 * GitOps sequence 2: client-side apply with the label prune, A -> B -> C (-> C with the monitoring kinds):
 * kubectl refuses the label prune with --server-side (the README's reason for a client-side apply); the
 * Secret's data lands in last-applied-configuration; C's allowlist leaves the monitoring kinds behind until
 * they are allowed.
 */
import * as assert from "node:assert/strict";
import { getJson } from "../../clients/kubectl";
import type { GitOpsRun } from "./gitops-run";

const MONITORING_ALLOWLIST = [
  "monitoring.coreos.com/v1/PodMonitor",
  "monitoring.coreos.com/v1/PrometheusRule",
];

export async function labelPrune(g: GitOpsRun): Promise<void> {
  const { A, B } = g;
  await serverSideRefused(g);
  await g.run(g.cmds(A).labelPrune, "label-prune apply A");
  await g.expectExactly(A, "after A");
  // The README: a client-side apply copies each object, the Secret included, into an annotation.
  const secret = await getJson(g.k, ["secret", (await g.names("secret"))[0], "-n", g.ns]);
  const lastApplied = secret.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"] ?? "";
  assert.match(
    lastApplied,
    /"(string)?[dD]ata":\{[^}]*"userlist\.txt"/,
    "the Secret's data is in last-applied-configuration",
  );
  await g.run(g.cmds(B).labelPrune, "label-prune apply B");
  await g.expectExactly(B, "after B");
  await monitoringKindsAllowed(g);
}

/** The README: kubectl refuses the label prune together with --server-side, hence a client-side apply. */
async function serverSideRefused(g: GitOpsRun): Promise<void> {
  const ssaLabel = g.cmds(g.A).labelPrune.argv.slice(1);
  const refused = await g.world.kubectlRaw([ssaLabel[0], "--server-side", ...ssaLabel.slice(1)]);
  g.log(`  --server-side --prune -l: exit ${refused.code}: ${refused.stderr.trim()}`);
  assert.notEqual(refused.code, 0, "kubectl refuses --prune -l with --server-side");
  assert.match(refused.stderr, /server-side apply/);
  assert.deepEqual(await g.counted(), {}, "and applies nothing");
}

/** C with C's allowlist keeps B's PodMonitor and PrometheusRules; with the monitoring kinds they go. */
async function monitoringKindsAllowed(g: GitOpsRun): Promise<void> {
  const { B, C } = g;
  await g.run(g.cmds(C).labelPrune, "label-prune apply C");
  const left = await g.counted();
  g.log(`  after C with C's allowlist only: ${JSON.stringify(left)}`);
  assert.deepEqual(
    left,
    {
      ...C.index.gitops.objectCounts,
      // B's: the pooler's alerts and, with a Vault PKI certificate, its expiry alerts.
      "podmonitor.monitoring.coreos.com": B.index.gitops.objectCounts["podmonitor.monitoring.coreos.com"],
      "prometheusrule.monitoring.coreos.com":
        B.index.gitops.objectCounts["prometheusrule.monitoring.coreos.com"],
    },
    "C's allowlist lacks the monitoring kinds: the PodMonitor and PrometheusRules stay (the README says so)",
  );
  const withMonitoring = g.cmds(C).labelPrune;
  const i = withMonitoring.argv.indexOf("-n");
  await g.run(
    {
      env: withMonitoring.env,
      argv: [
        ...withMonitoring.argv.slice(0, i),
        ...MONITORING_ALLOWLIST.map((a) => `--prune-allowlist=${a}`),
        ...withMonitoring.argv.slice(i),
      ],
    },
    "label-prune apply C with the monitoring kinds",
  );
  await g.expectExactly(C, "after C with the monitoring kinds allowed");
}
