/**
 * Node maintenance against the real scheduler and controller-manager: cordon, `kubectl drain` (evictions
 * through the PodDisruptionBudget), and a sampler that watches the pooler's pods and PDB while it happens,
 * so a scenario can assert that the PDB never let both replicas go.
 */
import { sleep } from "../../../harness/proc";
import { type KubeObject, type Kubectl, type KubectlRaw, getJson, waitFor } from "../../clients/kubectl";

/** The taint the node-lifecycle controller puts on a cordoned node; `nodeTaintsPolicy: Honor` acts on it. */
export const UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable";
/** The label with the StatefulSet revision a pod was made from. */
export const REVISION_LABEL = "controller-revision-hash";
/** What kubectl drain prints each time the PDB refuses an eviction (it retries). */
export const PDB_REFUSAL = "Cannot evict pod as it would violate the pod's disruption budget";

/** One pooler pod as the sampler sees it. */
export interface PodState {
  readonly name: string;
  readonly node?: string;
  readonly phase?: string;
  readonly ready: boolean;
  readonly terminating: boolean;
  /** `controller-revision-hash`: the StatefulSet's revision (ControllerRevision) the pod was made from. */
  readonly revision?: string;
  /** The PodScheduled condition's message while the pod is unschedulable. */
  readonly unschedulable?: string;
}

export interface PdbState {
  readonly name: string;
  readonly currentHealthy?: number;
  readonly desiredHealthy?: number;
  readonly disruptionsAllowed?: number;
  readonly expectedPods?: number;
}

/** What a drain target is: the pooler's pods and PDB in one namespace, picked by one label selector. */
export interface Pooler {
  readonly kubectl: Kubectl;
  readonly raw: KubectlRaw;
  readonly namespace: string;
  /** The StatefulSet's name. */
  readonly workload: string;
  readonly selector: string;
  readonly replicas: number;
  /** The fake nodes its pods can use, which the drains cordon and drain. */
  readonly nodes: readonly string[];
  readonly log: (line: string) => void;
}

type PodObject = KubeObject & {
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
};

function podState(o: PodObject): PodState {
  const cond = (t: string) => (o.status?.conditions ?? []).find((c) => c.type === t);
  const scheduled = cond("PodScheduled");
  return {
    name: o.metadata.name,
    node: o.spec?.nodeName,
    phase: o.status?.phase,
    ready: cond("Ready")?.status === "True",
    terminating: o.metadata.deletionTimestamp !== undefined,
    revision: o.metadata.labels?.[REVISION_LABEL],
    unschedulable:
      scheduled?.status === "False" && scheduled.reason === "Unschedulable" ? scheduled.message : undefined,
  };
}

/** The pooler's pods and its PDB, read in one kubectl call. */
export async function observe(p: Pooler): Promise<{ pods: PodState[]; pdb?: PdbState }> {
  const items = (
    await getJson<{ items: (PodObject & { status?: Record<string, unknown> })[] }>(p.kubectl, [
      "pods,poddisruptionbudgets.policy",
      "-n",
      p.namespace,
      "-l",
      p.selector,
    ])
  ).items;
  const pdbs = items.filter((o) => o.kind === "PodDisruptionBudget");
  if (pdbs.length > 1) throw new Error(`more than one PDB selects ${p.selector} in ${p.namespace}`);
  const pdb = pdbs[0];
  return {
    pods: items.filter((o) => o.kind === "Pod").map(podState),
    pdb: pdb && { name: pdb.metadata.name, ...(pdb.status as Omit<PdbState, "name">) },
  };
}

/** Pods that serve: Ready and not on their way out. */
export function serving(pods: readonly PodState[]): PodState[] {
  return pods.filter((x) => x.ready && !x.terminating);
}

export interface SamplerReport {
  readonly samples: number;
  readonly minServing: number;
  readonly maxDisruptionsAllowed: number;
  /** The most pod objects of the pooler seen at once (terminating ones included): a surge would exceed replicas. */
  readonly maxPods: number;
  /** Every breach of the invariant, with the time since the sampler started. */
  readonly violations: readonly string[];
}

/**
 * Samples every `everyMs` until stopped (and at most `limitMs`): at every sample at least
 * `replicas - 1` pods serve (the PDB's `maxUnavailable: 1`), and whenever only that many serve, the PDB
 * allows no disruption. The PDB's status trails the pods by a controller round trip, so that second rule
 * counts as broken only when two samples in a row show it.
 */
export function startSampler(
  p: Pooler,
  o: { everyMs?: number; limitMs: number },
): { stop(): Promise<SamplerReport> } {
  const started = Date.now();
  const floor = p.replicas - 1;
  const violations: string[] = [];
  let samples = 0;
  let minServing = Number.POSITIVE_INFINITY;
  let maxAllowed = 0;
  let maxPods = 0;
  let stopped = false;
  let previousLoose = false;
  const loop = (async () => {
    while (!stopped && Date.now() - started < o.limitMs) {
      const at = ((Date.now() - started) / 1000).toFixed(1);
      try {
        const { pods, pdb } = await observe(p);
        const n = serving(pods).length;
        samples++;
        minServing = Math.min(minServing, n);
        maxPods = Math.max(maxPods, pods.length);
        maxAllowed = Math.max(maxAllowed, pdb?.disruptionsAllowed ?? 0);
        if (n < Math.max(floor, 1)) {
          violations.push(`t=${at}s: ${n} pods serving (${describe(pods)})`);
        }
        const loose = n <= floor && (pdb?.disruptionsAllowed ?? 0) > 0;
        if (loose && previousLoose) {
          violations.push(
            `t=${at}s: ${n} pods serving while the PDB allows ${pdb?.disruptionsAllowed} disruption(s)`,
          );
        }
        previousLoose = loose;
      } catch (e) {
        violations.push(`t=${at}s: sampling failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      await sleep(o.everyMs ?? 250);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return {
        samples,
        minServing: samples === 0 ? 0 : minServing,
        maxDisruptionsAllowed: maxAllowed,
        maxPods,
        violations,
      };
    },
  };
}

export function describe(pods: readonly PodState[]): string {
  return pods
    .map(
      (x) =>
        `${x.name}@${x.node ?? "-"}:${x.terminating ? "terminating" : x.ready ? "ready" : (x.phase ?? "?")}`,
    )
    .join(", ");
}

export interface DrainResult {
  readonly code: number;
  readonly ms: number;
  /** How often the PDB refused an eviction (kubectl drain retries each 5 s). */
  readonly pdbRefusals: number;
  readonly output: string;
}

/**
 * `kubectl drain <node> --ignore-daemonsets --delete-emptydir-data --timeout=<s>`, as the runbook runs it,
 * plus `--grace-period`: kwok runs no container, and the world's pod-delete stage removes a terminating pod
 * within 2 s whatever its grace period (world/kwok.ts); the flag keeps a drain of another cluster as short.
 * A drain's seconds are therefore the API's (evictions, the PDB's refusals, the controllers), not a pod's
 * preStop sleep and PgBouncer's drain.
 */
export async function drain(
  p: Pick<Pooler, "raw" | "log">,
  node: string,
  timeoutS: number,
  gracePeriodS = 2,
): Promise<DrainResult> {
  const args = [
    "drain",
    node,
    "--ignore-daemonsets",
    "--delete-emptydir-data",
    `--timeout=${timeoutS}s`,
    `--grace-period=${gracePeriodS}`,
  ];
  p.log(`$ kubectl ${args.join(" ")}`);
  const t = Date.now();
  const r = await p.raw(args, { timeoutMs: (timeoutS + 30) * 1000 });
  const output = r.stdout + r.stderr;
  return {
    code: r.code,
    ms: Date.now() - t,
    pdbRefusals: output.split(PDB_REFUSAL).length - 1,
    output,
  };
}

/** Cordons a node and waits for the node-lifecycle controller's taint (what `nodeTaintsPolicy` reads). */
export async function cordon(p: Pick<Pooler, "kubectl" | "log">, node: string): Promise<void> {
  p.log(`$ kubectl cordon ${node}`);
  await p.kubectl(["cordon", node]);
  await waitFor(
    `the ${UNSCHEDULABLE_TAINT} taint on ${node}`,
    async () => ((await taints(p.kubectl, node)).includes(UNSCHEDULABLE_TAINT) ? true : undefined),
    30_000,
    250,
  );
}

export async function uncordonAll(p: Pick<Pooler, "kubectl" | "log" | "nodes">): Promise<void> {
  p.log(`$ kubectl uncordon ${p.nodes.join(" ")}`);
  await p.kubectl(["uncordon", ...p.nodes]);
}

export async function taints(kubectl: Kubectl, node: string): Promise<string[]> {
  const n = await getJson<KubeObject & { spec?: { taints?: { key: string }[] } }>(kubectl, ["node", node]);
  return (n.spec?.taints ?? []).map((t) => t.key);
}

/**
 * Waits until exactly `replicas` pods serve, all of one revision, no other pod stays (a Pending one; pods on
 * their way out are ignored: kwok deletes them within 2 s), and the PDB
 * counts them; returns the milliseconds it took and the serving pods.
 */
export async function settled(p: Pooler, boundMs: number): Promise<{ ms: number; pods: PodState[] }> {
  const t = Date.now();
  const pods = await waitFor(
    `${p.replicas} pooler pods Ready in ${p.namespace} (within ${boundMs / 1000} s)`,
    async () => {
      const { pods: all, pdb } = await observe(p);
      const up = serving(all);
      const staying = all.filter((x) => !x.terminating);
      if (up.length !== p.replicas || staying.length !== p.replicas) throw new Error(describe(all));
      if (pdb?.currentHealthy !== p.replicas) throw new Error(`PDB currentHealthy ${pdb?.currentHealthy}`);
      if (new Set(up.map((x) => x.revision)).size !== 1) throw new Error(`two revisions: ${describe(all)}`);
      return up;
    },
    boundMs,
    250,
  );
  return { ms: Date.now() - t, pods };
}

/** The pooler's FailedScheduling events since `sinceMs` (epoch ms): the scheduler's reasons. */
export async function failedScheduling(p: Pooler, sinceMs: number): Promise<string[]> {
  type Ev = KubeObject & {
    involvedObject?: { name?: string };
    regarding?: { name?: string };
    message?: string;
    note?: string;
    eventTime?: string;
    lastTimestamp?: string;
    series?: { lastObservedTime?: string };
  };
  const events = (
    await getJson<{ items: Ev[] }>(p.kubectl, [
      "events",
      "-n",
      p.namespace,
      "--field-selector",
      "reason=FailedScheduling",
    ])
  ).items;
  const prefix = `${p.workload}-`;
  return events
    .filter((e) => (e.involvedObject?.name ?? "").startsWith(prefix))
    .filter((e) => {
      const when = e.series?.lastObservedTime ?? e.lastTimestamp ?? e.eventTime;
      return when !== undefined && Date.parse(when) >= sinceMs - 1000;
    })
    .map((e) => `${e.involvedObject?.name}: ${e.message ?? ""}`);
}
