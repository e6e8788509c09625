/**
 * One stack's run of the runbook scenario, as its steps share it: the stack's settings, its namespaces and
 * endpoints, what earlier steps measured for later ones, and the reads every step asserts on (the backend's
 * ConfigMap and revision, a snapshot of the objects, the pooler's pods, the route, a Deployment's or the
 * StatefulSet's readiness as the API server reports it, and what a preview plans).
 */
import * as assert from "node:assert/strict";
import { ROUTE_ANNOTATION } from "../../../../components/backend-route";
import { SERVICE_NAME, STATEFULSET_NAME, serviceNames } from "../../../../components/pgbouncer";
import { type StackSettings, loadStackSettings } from "../../../../stacks/settings";
import { type KubeObject, type Kubectl, getJson, list, waitFor } from "../../clients/kubectl";
import type { VaultClient } from "../../clients/vault";
import type { ScenarioContext } from "../../context";
import { FIRST_LOGINS, type LoginsState, backendNamespace } from "../../fixtures";

/** The pooler's pods and everything selected by the pooler's labels. */
export const POOLER_SELECTOR = "app.kubernetes.io/name=pgbouncer";
/**
 * Kinds a snapshot covers: what the program creates (the StatefulSet and its ControllerRevisions, one per pod
 * template it ran), and what it patches (the backend's Deployment and its ReplicaSets).
 */
const SNAPSHOT_KINDS = [
  "statefulsets.apps",
  "controllerrevisions.apps",
  "deployments.apps",
  "replicasets.apps",
  "services",
  "configmaps",
  "secrets",
  "poddisruptionbudgets.policy",
  "networkpolicies.networking.k8s.io",
  "podmonitors.monitoring.coreos.com",
  "prometheusrules.monitoring.coreos.com",
].join(",");
const RUN_ANNOTATION = "deployment.kubernetes.io/revision";

/** Each object of the snapshot's kinds: `kind/namespace/name` -> `uid@generation` (or resourceVersion). */
export type Snapshot = Map<string, string>;

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface StackRun extends ScenarioContext {
  readonly s: StackSettings;
  readonly k: Kubectl;
  /** The pooler's namespace. */
  readonly ns: string;
  /** The backend's namespace. */
  readonly bns: string;
  readonly vault: VaultClient;
  /** Where the backend points with `backend.route pgbouncer`: the pooler's Service. */
  readonly pooler: Endpoint;
  /** Where it points with `backend.route direct`: PostgreSQL. */
  readonly direct: Endpoint;
  /** What a step measured for later ones. */
  readonly measured: {
    /** The backend's Deployment revision before the first `pulumi up` (preview-and-up). */
    backendRevision?: number;
    /** The cluster after the rollback, before the bad input (bad-input): nothing may change it after. */
    steady?: Snapshot;
  };
  /** What Vault holds now (the rotation moves it); what PostgreSQL and the auth file must agree with. */
  logins: LoginsState;
}

export function openStackRun(ctx: ScenarioContext): StackRun {
  const s = loadStackSettings(ctx.stack);
  return {
    ...ctx,
    s,
    k: ctx.world.kubectl,
    ns: s.namespace,
    bns: backendNamespace(s),
    vault: { addr: ctx.world.vaultAddr, token: ctx.world.vaultToken },
    pooler: { host: serviceNames(SERVICE_NAME, s.namespace).slice(-1)[0], port: s.workload.port },
    direct: { host: s.database.host, port: s.database.port },
    measured: {},
    logins: FIRST_LOGINS,
  };
}

/** A value an earlier step measured; fails naming that step when it did not run. */
export function measuredBy<T>(value: T | undefined, step: string): T {
  if (value === undefined) throw new Error(`the step ${step} must run first`);
  return value;
}

export async function backendConfig(r: StackRun): Promise<Record<string, string>> {
  const cm = await getJson<KubeObject & { data: Record<string, string> }>(r.k, [
    "configmap",
    r.s.backend.configMapName,
    "-n",
    r.bns,
  ]);
  return cm.data;
}

export async function backendRevision(r: StackRun): Promise<number> {
  return revision(await getJson(r.k, ["deployment", r.s.backend.deploymentName, "-n", r.bns]));
}

export function revision(o: KubeObject): number {
  return Number(o.metadata.annotations?.[RUN_ANNOTATION] ?? 0);
}

export async function snapshot(r: StackRun): Promise<Snapshot> {
  const items = [
    ...(await list(r.k, SNAPSHOT_KINDS, r.ns)),
    ...(r.bns === r.ns ? [] : await list(r.k, SNAPSHOT_KINDS, r.bns)),
  ];
  // Generation where there is one (status updates do not count as a change), else the resourceVersion.
  return new Map(
    items.map((o) => [
      `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`,
      `${o.metadata.uid}@${o.metadata.generation ?? o.metadata.resourceVersion}`,
    ]),
  );
}

/**
 * The backend points at `want`: its ConfigMap's keys, the stack outputs (`dbRoute` is `route`), and its
 * pods' route annotation; waits for the backend's rollout. Returns the stack outputs.
 */
export async function expectRoute(
  r: StackRun,
  want: Endpoint,
  route: string,
): Promise<Record<string, unknown>> {
  const { s, k, bns } = r;
  const data = await backendConfig(r);
  assert.equal(data[s.backend.hostKey], want.host, `${s.backend.configMapName}.${s.backend.hostKey}`);
  assert.equal(data[s.backend.portKey], String(want.port), `${s.backend.configMapName}.${s.backend.portKey}`);
  const out = await r.pulumi.outputs();
  assert.equal(out.dbRoute, route, "stack output dbRoute");
  assert.equal(out.dbHost, data[s.backend.hostKey], "stack output dbHost = backend-config DB_HOST");
  assert.equal(String(out.dbPort), data[s.backend.portKey], "stack output dbPort = backend-config DB_PORT");
  const dep = await getJson<
    KubeObject & { spec: { template: { metadata: { annotations?: Record<string, string> } } } }
  >(k, ["deployment", s.backend.deploymentName, "-n", bns]);
  assert.equal(
    dep.spec.template.metadata.annotations?.[ROUTE_ANNOTATION],
    `${route}/${want.host}:${want.port}`,
  );
  await k(["-n", bns, "rollout", "status", `deployment/${s.backend.deploymentName}`, "--timeout=120s"]);
  return out;
}

/** Waits until the Deployment is Available with `replicas` updated and available replicas. */
export async function expectAvailable(
  r: StackRun,
  ns: string,
  name: string,
  replicas: number,
): Promise<void> {
  await waitFor(`deployment/${name} Available with ${replicas} replicas`, async () => {
    const d = await getJson<KubeObject & { spec: { replicas: number }; status: Record<string, unknown> }>(
      r.k,
      ["deployment", name, "-n", ns],
    );
    const st = d.status as {
      updatedReplicas?: number;
      availableReplicas?: number;
      replicas?: number;
      observedGeneration?: number;
      conditions?: { type: string; status: string }[];
    };
    const available = (st.conditions ?? []).some((c) => c.type === "Available" && c.status === "True");
    return d.spec.replicas === replicas &&
      st.observedGeneration === d.metadata.generation &&
      st.updatedReplicas === replicas &&
      st.availableReplicas === replicas &&
      available
      ? true
      : undefined;
  });
}

/** The pooler's pods that are not on their way out: name -> uid. */
export async function poolerPodUids(r: StackRun): Promise<Map<string, string>> {
  const pods = (await list(r.k, "pods", r.ns, POOLER_SELECTOR)).filter((o) => !o.metadata.deletionTimestamp);
  return new Map(pods.map((o) => [o.metadata.name, o.metadata.uid]));
}

/** The StatefulSet as the API server holds it, with the status its controller writes. */
export type StatefulSetObject = KubeObject & {
  spec: {
    replicas: number;
    serviceName: string;
    template: { metadata: { annotations?: Record<string, string> }; spec: Record<string, unknown> };
    updateStrategy?: { type?: string; rollingUpdate?: { maxUnavailable?: number | string } };
  };
  status: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    updatedReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
  };
};

export async function statefulSet(r: StackRun): Promise<StatefulSetObject> {
  return getJson<StatefulSetObject>(r.k, ["statefulset", STATEFULSET_NAME, "-n", r.ns]);
}

/**
 * Waits until the StatefulSet's controller reports every replica ready and of the current revision (what
 * `kubectl rollout status statefulset/...` waits for; kwok, not a kubelet, marks its pods ready).
 */
export async function expectStatefulSetReady(r: StackRun, timeoutMs = 120_000): Promise<StatefulSetObject> {
  return waitFor(
    `statefulset/${STATEFULSET_NAME} with ${r.s.workload.replicas} ready replicas of its current revision`,
    async () => {
      const st = await statefulSet(r);
      const x = st.status;
      const done =
        st.spec.replicas === r.s.workload.replicas &&
        x.observedGeneration === st.metadata.generation &&
        x.replicas === r.s.workload.replicas &&
        x.readyReplicas === r.s.workload.replicas &&
        x.availableReplicas === r.s.workload.replicas &&
        x.updatedReplicas === r.s.workload.replicas &&
        x.currentRevision === x.updateRevision;
      if (!done) throw new Error(JSON.stringify(x));
      return st;
    },
    timeoutMs,
  );
}

/** One step of a preview's plan (`pulumi preview --json`): its operation, resource type and name. */
export interface PlannedStep {
  readonly op: string;
  readonly type: string;
  readonly name: string;
}

/** `urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>` -> its type and name. */
export function urnTypeAndName(urn: string): { type: string; name: string } {
  const parts = urn.split("::");
  const types = parts[2] ?? "";
  return { type: types.slice(types.lastIndexOf("$") + 1), name: parts.slice(3).join("::") };
}

/**
 * What `pulumi preview --json` (as the runbook runs it: with the policy pack) plans to change: every step
 * but `same` and the reads of what the stack does not own (its StackReference to itself, the Vault reads).
 */
export async function plannedChanges(r: StackRun): Promise<PlannedStep[]> {
  const res = await r.pulumi.ok(["preview", "--json", "--policy-pack", "policy"], { quiet: true });
  const plan = JSON.parse(res.stdout) as { steps?: { op: string; urn: string }[] };
  return (plan.steps ?? [])
    .filter((x) => x.op !== "same" && x.op !== "read")
    .map((x) => ({ op: x.op, ...urnTypeAndName(x.urn) }));
}

/** The last 30 lines of a command's output, for an assertion's message. */
export function tail(text: string): string {
  return text.split("\n").slice(-30).join("\n");
}

/**
 * `pulumi up` as the runbook and the deploy workflow run it: with the policy pack and `--refresh` (the
 * refresh is what notices a certificate due for renewal, and a backend key someone took back). `--yes
 * --skip-preview` stand for the person who read the preview.
 */
export const UP = ["up", "--yes", "--skip-preview", "--refresh", "--policy-pack", "policy"] as const;

export async function pulumiUp(r: StackRun): Promise<void> {
  await r.pulumi.ok(UP);
}
