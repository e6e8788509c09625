/**
 * Step pooler-serving, on the cluster: the Deployment Available, its pods admitted under Pod Security
 * `restricted` (enforced: a pod that breaks it is refused), the PDB counting them, the NetworkPolicy (its
 * egress as rendered), the certificate OpenBao's PKI issued into `pgbouncer-tls` and the pods' `tls` volume
 * (./tls.ts), the Service's EndpointSlices, and in prometheus-operator mode the PodMonitor and the
 * PrometheusRules the CRD's schema accepted (and a malformed one it refuses).
 */
import * as assert from "node:assert/strict";
import { STATEFULSET_NAME, SERVICE_NAME } from "../../../../components/pgbouncer";
import { type KubeObject, getJson, list, waitFor } from "../../clients/kubectl";
import { POOLER_SELECTOR, type StackRun, expectAvailable } from "./stack-run";
import { expectEgressPolicy, expectIssuedCertificate, expectTlsMounted, pkiMount } from "./tls";

export async function poolerServing(r: StackRun): Promise<void> {
  await expectRestrictedPods(r);
  await expectPdbAndNetworkPolicy(r);
  await expectEgressPolicy(r);
  if (pkiMount(r) !== undefined) {
    const c = await expectIssuedCertificate(r);
    r.log(`  pgbouncer-tls: serial ${c.serial}, issued by ${c.leaf.issuer}, SANs ${c.leaf.subjectAltName}`);
  }
  if (r.s.tls.certificate !== undefined) await expectTlsMounted(r);
  await expectEndpoints(r);
  if (r.s.monitoring.mode === "prometheus-operator") await expectMonitoring(r);
}

async function expectRestrictedPods(r: StackRun): Promise<void> {
  const { k, ns, s } = r;
  await expectAvailable(r, ns, STATEFULSET_NAME, s.workload.replicas);
  const pods = (await list(k, "pods", ns, POOLER_SELECTOR)).filter((o) => !o.metadata.deletionTimestamp);
  const running = pods.filter((o) => (o.status as { phase?: string }).phase === "Running");
  assert.ok(running.length >= s.workload.replicas, `${s.workload.replicas} pooler pods running`);
  const nsObj = await getJson(k, ["namespace", ns]);
  assert.equal(nsObj.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
  // The profile is enforced: a pod that breaks it is refused, so the running pods passed it.
  const rootPod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "e2e-psa-probe", namespace: ns },
    spec: {
      // No securityContext: root allowed, privilege escalation, every capability (baseline, not restricted).
      containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }],
    },
  };
  const probe = await r.world.kubectlRaw(["apply", "--dry-run=server", "-f", "-"], {
    input: JSON.stringify(rootPod),
  });
  assert.notEqual(probe.code, 0, "a pod that breaks restricted must be refused");
  assert.match(probe.stderr, /violates PodSecurity "restricted/, probe.stderr);
}

async function expectPdbAndNetworkPolicy(r: StackRun): Promise<void> {
  const { k, ns, s } = r;
  const pdbs = await list(k, "poddisruptionbudgets.policy", ns, POOLER_SELECTOR);
  assert.equal(pdbs.length, 1, "one PodDisruptionBudget");
  await waitFor("the PDB to count the pods", async () => {
    const pdb = await getJson(k, ["poddisruptionbudgets.policy", pdbs[0].metadata.name, "-n", ns]);
    return (pdb.status as { expectedPods?: number }).expectedPods === s.workload.replicas ? true : undefined;
  });
  assert.equal(
    (await list(k, "networkpolicies.networking.k8s.io", ns, POOLER_SELECTOR)).length,
    1,
    "one NetworkPolicy",
  );
}

async function expectEndpoints(r: StackRun): Promise<void> {
  const { k, ns, s } = r;
  await waitFor("the Service's EndpointSlices to list every pod", async () => {
    const slices = await list(
      k,
      "endpointslices.discovery.k8s.io",
      ns,
      `kubernetes.io/service-name=${SERVICE_NAME}`,
    );
    const ready = slices.flatMap((x) =>
      ((x.endpoints ?? []) as { conditions?: { ready?: boolean } }[]).filter((e) => e.conditions?.ready),
    );
    const ports = slices.flatMap((x) => ((x.ports ?? []) as { port: number }[]).map((pp) => pp.port));
    return ready.length === s.workload.replicas &&
      ports.includes(s.workload.port) &&
      ports.includes(s.exporter.port)
      ? true
      : undefined;
  });
}

async function expectMonitoring(r: StackRun): Promise<void> {
  const { k, ns } = r;
  assert.equal((await list(k, "podmonitors.monitoring.coreos.com", ns)).length, 1, "one PodMonitor");
  const rules = await list(k, "prometheusrules.monitoring.coreos.com", ns);
  // The pooler's alerts, and the certificate's expiry alerts when the program issued it (Vault PKI).
  const want = pkiMount(r) === undefined ? 1 : 2;
  assert.equal(rules.length, want, `${want} PrometheusRules, accepted by the CRD's schema`);
  // The schema is live: the same rule with a duration it cannot parse is refused.
  const bad = JSON.parse(JSON.stringify(rules[0])) as KubeObject & {
    spec: { groups: { rules: { for?: string }[] }[] };
  };
  bad.spec.groups[0].rules[0].for = "five minutes";
  const bm = bad.metadata as {
    name: string;
    resourceVersion?: string;
    uid?: string;
    managedFields?: unknown;
  };
  delete bm.resourceVersion;
  delete bm.uid;
  delete bm.managedFields;
  const res = await r.world.kubectlRaw(
    [
      "apply",
      "--dry-run=server",
      "--server-side",
      "--field-manager=clipper-e2e-probe",
      "--force-conflicts",
      "-f",
      "-",
    ],
    { input: JSON.stringify(bad) },
  );
  assert.notEqual(res.code, 0, "the PrometheusRule CRD refuses a malformed duration");
}
