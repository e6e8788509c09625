/**
 * The fleet's identities as the API server holds them, derived from the live objects and never from the
 * program's own naming functions: the StatefulSet controller names each pod `<statefulset>-<ordinal>` (and
 * labels it `apps.kubernetes.io/pod-index`), sets its hostname to that name and its subdomain to the
 * StatefulSet's `serviceName`; the EndpointSlice controller publishes each pod's hostname under the headless
 * Service of that name, which is what the cluster DNS answers `<hostname>.<subdomain>.<ns>.svc.<domain>`
 * from. From those, each process's peer id (ordinal x processes per pod + process, as the pod's script
 * computes it from its pod's name) and the `[peers]` entry the live ConfigMap must hold for it.
 */
import * as assert from "node:assert/strict";
import { AUTH_CONFIG_NAMES, INI_FILE, iniParameters } from "../../../../components/pgbouncer";
import { type KubeObject, getJson, list, waitFor } from "../../clients/kubectl";
import { POOLER_SELECTOR, type StackRun, type StatefulSetObject, statefulSet } from "./stack-run";

/**
 * The cluster's DNS domain: what every kubelet of a cluster is configured with (`clusterDomain`) and its DNS
 * serves. kwok's nodes have no kubelet; this is the domain of the clusters the stacks deploy to.
 */
export const CLUSTER_DOMAIN = "cluster.local";

/** The label the StatefulSet controller puts the pod's ordinal in (Kubernetes 1.28 and later). */
export const POD_INDEX_LABEL = "apps.kubernetes.io/pod-index";

/** One live pooler pod, as the StatefulSet controller made it. */
export interface LivePod {
  readonly name: string;
  readonly uid: string;
  readonly ordinal: number;
  readonly hostname: string;
  readonly subdomain: string;
  /** `<hostname>.<subdomain>.<namespace>.svc.<cluster domain>`: the name its peers reach it by. */
  readonly dnsName: string;
  readonly node?: string;
}

type PodObject = KubeObject & {
  spec: { hostname?: string; subdomain?: string; nodeName?: string };
};

/** The PgBouncer containers of a pod spec (their script's environment names their process), by number. */
export function scriptProcesses(podSpec: Record<string, unknown>): number[] {
  const containers = (podSpec.containers ?? []) as { env?: { name: string; value?: string }[] }[];
  return containers
    .map((c) => c.env?.find((e) => e.name === "PGBOUNCER_PROCESS")?.value)
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * The live pods, each checked against what the controller must have set: the ordinal in its name equals its
 * pod-index label, its hostname is its name, its subdomain is the StatefulSet's serviceName; the ordinals are
 * exactly 0 .. replicas - 1.
 */
export async function livePods(r: StackRun, st?: StatefulSetObject): Promise<LivePod[]> {
  const set = st ?? (await statefulSet(r));
  const pods = (await list(r.k, "pods", r.ns, POOLER_SELECTOR)).filter(
    (o) => !o.metadata.deletionTimestamp,
  ) as PodObject[];
  const out = pods.map((p): LivePod => {
    const name = p.metadata.name;
    const m = /^(.+)-(\d+)$/.exec(name);
    assert.ok(m && m[1] === set.metadata.name, `pod ${name} is named <statefulset ${set.metadata.name}>-<n>`);
    const ordinal = Number(m[2]);
    assert.equal(p.metadata.labels?.[POD_INDEX_LABEL], String(ordinal), `pod ${name}'s ${POD_INDEX_LABEL}`);
    const hostname = p.spec.hostname ?? "";
    const subdomain = p.spec.subdomain ?? "";
    assert.equal(hostname, name, `pod ${name}'s hostname, as the StatefulSet controller sets it`);
    assert.equal(subdomain, set.spec.serviceName, `pod ${name}'s subdomain is the StatefulSet's serviceName`);
    return {
      name,
      uid: p.metadata.uid,
      ordinal,
      hostname,
      subdomain,
      dnsName: `${hostname}.${subdomain}.${r.ns}.svc.${CLUSTER_DOMAIN}`,
      node: p.spec.nodeName,
    };
  });
  out.sort((a, b) => a.ordinal - b.ordinal);
  assert.deepEqual(
    out.map((p) => p.ordinal),
    Array.from({ length: r.s.workload.replicas }, (_, i) => i),
    `the pods' ordinals are 0 .. ${r.s.workload.replicas - 1}`,
  );
  return out;
}

/** The live ConfigMap's shared ini. */
export async function liveIni(r: StackRun): Promise<string> {
  const cm = await getJson<KubeObject & { data: Record<string, string> }>(r.k, [
    "configmap",
    AUTH_CONFIG_NAMES.config,
    "-n",
    r.ns,
  ]);
  const ini = cm.data[INI_FILE];
  assert.ok(ini, `ConfigMap ${AUTH_CONFIG_NAMES.config} has ${INI_FILE}`);
  return ini;
}

/**
 * What `[peers]` must be for these pods: for each pod and each process `p` of the pod template, peer id
 * `ordinal x processes + p` at the pod's DNS name and the client port its template declares.
 */
export function expectedPeers(
  pods: readonly LivePod[],
  processes: readonly number[],
  port: number,
): Map<string, string> {
  const peers = new Map<string, string>();
  for (const pod of pods) {
    for (const p of processes) {
      const id = String(pod.ordinal * processes.length + p);
      assert.ok(!peers.has(id), `peer id ${id} given twice`);
      peers.set(id, `host=${pod.dnsName} port=${port}`);
    }
  }
  return peers;
}

/**
 * Every pod has a distinct peer identity, and the live ConfigMap's `[peers]` names exactly the live pods' DNS
 * names: the headless Service is the StatefulSet's and publishes not-ready pods, its EndpointSlices give each
 * pod its hostname, and the canary Service's list pod 0 only. Returns the pods and their peers.
 */
export async function expectFleetIdentity(
  r: StackRun,
  st: StatefulSetObject,
): Promise<{ pods: LivePod[]; peers: Map<string, string> }> {
  const pods = await livePods(r, st);
  const processes = scriptProcesses(st.spec.template.spec);
  assert.deepEqual(
    processes,
    Array.from({ length: r.s.workload.processesPerPod }, (_, i) => i + 1),
    "one PgBouncer container per process, numbered from 1",
  );
  const containers = st.spec.template.spec.containers as {
    ports?: { name?: string; containerPort: number }[];
  }[];
  const port = containers.flatMap((c) => c.ports ?? []).find((x) => x.name === "pgbouncer")?.containerPort;
  assert.ok(port, "the pod template declares the client port");
  const want = expectedPeers(pods, processes, port);
  const got = iniParameters(await liveIni(r), "peers");
  assert.deepEqual(
    [...got.entries()].sort(),
    [...want.entries()].sort(),
    "the live ConfigMap's [peers]: every process of every live pod, at its pod's DNS name",
  );

  const service = await getJson<
    KubeObject & { spec: { clusterIP?: string; publishNotReadyAddresses?: boolean } }
  >(r.k, ["service", st.spec.serviceName, "-n", r.ns]);
  assert.equal(service.spec.clusterIP, "None", `Service ${st.spec.serviceName} is headless`);
  assert.equal(
    service.spec.publishNotReadyAddresses,
    true,
    `Service ${st.spec.serviceName} publishes pods that are not ready (a draining pod still owns queries)`,
  );
  await waitFor(
    `the EndpointSlices of ${st.spec.serviceName} to name every pod by its hostname`,
    async () => {
      const named = (await endpointsOf(r, st.spec.serviceName)).map((e) => `${e.hostname}=${e.pod}`).sort();
      const wantNamed = pods.map((p) => `${p.hostname}=${p.name}`).sort();
      if (JSON.stringify(named) !== JSON.stringify(wantNamed)) throw new Error(named.join(", "));
      return true;
    },
  );
  return { pods, peers: want };
}

/** The endpoints the EndpointSlices of Service `service` list: the pod, its hostname, whether ready. */
export async function endpointsOf(
  r: StackRun,
  service: string,
): Promise<{ pod?: string; hostname?: string; ready?: boolean }[]> {
  const slices = await list(
    r.k,
    "endpointslices.discovery.k8s.io",
    r.ns,
    `kubernetes.io/service-name=${service}`,
  );
  return slices.flatMap((x) =>
    (
      (x.endpoints ?? []) as {
        hostname?: string;
        targetRef?: { kind?: string; name?: string };
        conditions?: { ready?: boolean };
      }[]
    ).map((e) => ({ pod: e.targetRef?.name, hostname: e.hostname, ready: e.conditions?.ready })),
  );
}
