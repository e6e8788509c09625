/**
 * Step pooler-api-state: what the API server holds after the first `pulumi up`, and nothing more (kwok, not a
 * kubelet, marks the pods Running and Ready; no container runs, no volume is mounted: the live-fleet step
 * runs the live objects on the real binaries). The StatefulSet as its controller reports it (every replica
 * ready, of its current revision; a rolling update of one pod at a time), its pods admitted under Pod
 * Security `restricted` (enforced: a pod that breaks it is refused, in its words), each pod's identity and
 * the live `[peers]` (./fleet-identity.ts), the canary Service's endpoints (pod 0 only), the PDB counting
 * the pods, the NetworkPolicy (its egress as rendered; a bad protocol refused, in its words), the
 * certificate OpenBao's PKI issued into `pgbouncer-tls` and the pods' `tls` volume (./tls.ts), the client
 * Service's EndpointSlices, and in prometheus-operator mode the PodMonitor and the PrometheusRules the CRD's
 * schema accepted (and a malformed one it refuses, in its words).
 */
import * as assert from "node:assert/strict";
import { CANARY_SERVICE_NAME, SERVICE_NAME } from "../../../../components/pgbouncer";
import { type KubeObject, getJson, list, waitFor } from "../../clients/kubectl";
import { endpointsOf, expectFleetIdentity } from "./fleet-identity";
import { POOLER_SELECTOR, type StackRun, type StatefulSetObject, expectStatefulSetReady } from "./stack-run";
import { expectEgressPolicy, expectIssuedCertificate, expectTlsMounted, pkiMount } from "./tls";

/** What the API server answers a pod that breaks `restricted` (kube-apiserver 1.35.4's Pod Security). */
export const PSA_REFUSAL = /violates PodSecurity "restricted:latest": /;
/** What the CRD's schema answers a PrometheusRule whose `for` is no duration. */
export const BAD_DURATION_REFUSAL =
  /spec\.groups\[0\]\.rules\[0\]\.for: Invalid value: "five minutes": spec\.groups\[0\]\.rules\[0\]\.for in body should match/;

export async function poolerApiState(r: StackRun): Promise<void> {
  const st = await expectStatefulSetReady(r);
  expectRollingUpdate(st);
  await expectRestrictedPods(r);
  const { pods, peers } = await expectFleetIdentity(r, st);
  r.log(
    `  pods ${pods.map((p) => `${p.name} (${p.dnsName})`).join(", ")}; [peers] ${[...peers.keys()].join(", ")}`,
  );
  await expectCanaryEndpoints(r, `${st.metadata.name}-0`);
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

/**
 * The StatefulSet's own rolling update, as stored: one pod at a time, highest ordinal first, each replaced
 * once it has gone (port-rolls measures it). No `maxUnavailable`: kube-apiserver 1.35 drops it unless the
 * MaxUnavailableStatefulSet gate is on (it is off by default, here too).
 */
function expectRollingUpdate(st: StatefulSetObject): void {
  assert.deepEqual(
    st.spec.updateStrategy,
    { type: "RollingUpdate" },
    "the StatefulSet's update strategy, as the API server stored it",
  );
}

/** The canary Service publishes pod 0, and only pod 0 (while it is ready). */
async function expectCanaryEndpoints(r: StackRun, pod0: string): Promise<void> {
  await waitFor(`the EndpointSlices of ${CANARY_SERVICE_NAME} to list ${pod0} only`, async () => {
    const eps = await endpointsOf(r, CANARY_SERVICE_NAME);
    if (JSON.stringify(eps.map((e) => `${e.pod}:${e.ready}`)) !== JSON.stringify([`${pod0}:true`]))
      throw new Error(JSON.stringify(eps));
    return true;
  });
}

async function expectRestrictedPods(r: StackRun): Promise<void> {
  const { k, ns, s } = r;
  const pods = (await list(k, "pods", ns, POOLER_SELECTOR)).filter((o) => !o.metadata.deletionTimestamp);
  // kwok's stages set the phase: the API state of a scheduled pod, not a container that runs.
  const running = pods.filter((o) => (o.status as { phase?: string }).phase === "Running");
  assert.ok(running.length >= s.workload.replicas, `${s.workload.replicas} pooler pods in phase Running`);
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
  assert.match(probe.stderr, PSA_REFUSAL, probe.stderr);
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
  assert.match(res.stderr, BAD_DURATION_REFUSAL, res.stderr);
}
