/**
 * Issue 11 on the real control plane: node drains against kube-apiserver, kube-scheduler and the
 * controller-manager (whose node-lifecycle controller taints cordoned nodes), with kwok's fake nodes.
 *
 * - `runMaintenanceRender`: the rendered Deployment and PDB applied into namespaces of their own: the old
 *   spread strands a pod (the negative case, so the test can fail), the fixed one does not; a drain in
 *   steady state, a drain next to a cordoned node, and a drain next to a full node (the reason for the
 *   soft default: a hard spread leaves the pod Pending there).
 * - `runMaintenanceLive`: the same drains on the Deployment a real `pulumi up` made, plus the hard spread
 *   (`pgbouncer.spreadWhenUnsatisfiable: DoNotSchedule`) and a drain during a `pulumi up` that rolls the pods.
 *
 * Every drain runs under the sampler of drain.ts: at least one pod serves at every sample, and the PDB
 * allows nothing while only one does. kwok runs no container: this proves scheduling and the PDB, not
 * PgBouncer serving (the preStop hook and the grace period are not exercised).
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import {
  DEPLOYMENT_NAME,
  selectorLabels,
  spreadConstraints,
  strandingSpreadConstraints,
} from "../../components/pgbouncer";
import { checkSpreadCannotStrand } from "../../policy/policies";
import { sleep } from "../harness/proc";
import {
  type Pooler,
  type SamplerReport,
  cordon,
  describe,
  drain,
  failedScheduling,
  observe,
  serving,
  settled,
  startSampler,
  uncordonAll,
} from "./drain";
import { namespaceManifest } from "./fixtures";
import { type KubeObject, getJson, waitFor } from "./kube";
import type { PulumiStack } from "./pulumi";
import { type RenderedObject, objectOf, render } from "./renders";
import { NODE_NAMES, type World } from "./world";
import { loadStackSettings } from "../../stacks/settings";

const STACK = "prod";
/** Bounds of the scenarios (the plan's proposals; the measured figures are logged next to them). */
export const BOUNDS = { drainS: 120, readyAfterDrainMs: 30_000, strandedForMs: 30_000, respreadMs: 120_000 };
const POOLER_SELECTOR = "app.kubernetes.io/name=pgbouncer";

export interface MaintenanceContext {
  readonly world: World;
  readonly log: (line: string) => void;
}

/** Per scenario: its name and how long it took. */
export type Timings = [string, number][];

function pooler(ctx: MaintenanceContext, namespace: string): Pooler {
  const s = loadStackSettings(STACK);
  return {
    kubectl: ctx.world.kubectl,
    raw: ctx.world.kubectlRaw,
    namespace,
    deployment: DEPLOYMENT_NAME,
    selector: POOLER_SELECTOR,
    replicas: s.workload.replicas,
    log: ctx.log,
  };
}

function expectClean(what: string, r: SamplerReport, log: (l: string) => void): void {
  log(
    `  sampler (${what}): ${r.samples} samples, min serving ${r.minServing}, max disruptionsAllowed ${r.maxDisruptionsAllowed}`,
  );
  assert.deepEqual(r.violations, [], `${what}: the PDB let the pooler drop below one serving pod`);
  assert.ok(r.samples > 3, `${what}: the sampler ran (${r.samples} samples)`);
}

async function timed(timings: Timings, name: string, log: (l: string) => void, f: () => Promise<void>) {
  const t = Date.now();
  log(`\n[maintenance] ${name}`);
  await f();
  const s = (Date.now() - t) / 1000;
  timings.push([name, s]);
  log(`[maintenance] ${name}: passed in ${s.toFixed(1)} s`);
}

/** Scenario 1: drain a node holding a pooler pod; the replacement goes to the free node. */
export async function steadyDrain(p: Pooler): Promise<void> {
  const before = (await settled(p, 60_000)).pods;
  const nodes = before.map((x) => x.node ?? "");
  assert.equal(new Set(nodes).size, p.replicas, `steady state: pods on distinct nodes (${describe(before)})`);
  const free = NODE_NAMES.filter((n) => !nodes.includes(n));
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

/**
 * Scenario 2: all nodes but one cordoned (the failure), then a drain of the other pooler node: the
 * replacement goes next to the remaining pod, and the scheduler never reports it unschedulable.
 */
export async function cordonedDrain(p: Pooler): Promise<void> {
  const before = (await settled(p, 60_000)).pods;
  const nodes = before.map((x) => x.node ?? "");
  assert.equal(new Set(nodes).size, p.replicas, `before: pods on distinct nodes (${describe(before)})`);
  const [a, x] = nodes;
  const third = NODE_NAMES.filter((n) => !nodes.includes(n));
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
  // The runbook's respread: a rollout restart puts the two pods on two nodes again.
  await p.kubectl(["-n", p.namespace, "rollout", "restart", `deployment/${p.deployment}`]);
  await p.kubectl([
    "-n",
    p.namespace,
    "rollout",
    "status",
    `deployment/${p.deployment}`,
    `--timeout=${BOUNDS.respreadMs / 1000}s`,
  ]);
  const after = (await settled(p, BOUNDS.respreadMs)).pods;
  assert.equal(
    new Set(after.map((y) => y.node)).size,
    p.replicas,
    `after a rollout restart the pods are on distinct nodes again (${describe(after)})`,
  );
}

/** The live Deployment's spread as the policy pack sees it: its reports. */
async function policyReports(p: Pooler): Promise<string[]> {
  const live = await getJson(p.kubectl, ["deployment", p.deployment, "-n", p.namespace]);
  const reports: string[] = [];
  checkSpreadCannotStrand(
    { type: "kubernetes:apps/v1:Deployment", name: p.deployment, props: live as Record<string, unknown> },
    (m) => reports.push(m),
  );
  return reports;
}

async function liveSpread(p: Pooler): Promise<unknown> {
  const d = await getJson<
    KubeObject & { spec: { template: { spec: { topologySpreadConstraints?: unknown } } } }
  >(p.kubectl, ["deployment", p.deployment, "-n", p.namespace]);
  return d.spec.template.spec.topologySpreadConstraints;
}

/** The rendered Deployment and PDB, moved to `namespace`, with `spread` as the pod template's spread. */
function intoNamespace(
  objects: readonly RenderedObject[],
  namespace: string,
  spread?: unknown,
): RenderedObject[] {
  return objects.map((o) => {
    const c = JSON.parse(JSON.stringify(o)) as RenderedObject & {
      spec: { template?: { spec: { topologySpreadConstraints?: unknown } } };
    };
    c.metadata.namespace = namespace;
    if (spread !== undefined && c.spec.template) c.spec.template.spec.topologySpreadConstraints = spread;
    return c;
  });
}

async function applyObjects(ctx: MaintenanceContext, objects: readonly unknown[]): Promise<void> {
  for (const o of objects) {
    await ctx.world.kubectl(["apply", "--server-side", "--field-manager=clipper-e2e", "-f", "-"], {
      input: JSON.stringify(o),
    });
  }
}

/** A namespace of this e2e, gone (its fake pods deleted at once: kwok would take up to their grace period). */
async function dropNamespace(ctx: MaintenanceContext, ns: string): Promise<void> {
  await ctx.world.kubectlRaw(["delete", "namespace", ns, "--wait=false", "--ignore-not-found"]);
  await ctx.world.kubectlRaw(["delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force"]);
}

/**
 * Scenario 4, the negative case: the spread this program rendered before issue 11 leaves the evicted pod
 * Pending next to a cordoned node, the PDB at 0; the fixed spread, applied over it, gets both pods Ready.
 */
export async function strandingDrain(
  ctx: MaintenanceContext,
  objects: readonly RenderedObject[],
): Promise<void> {
  const ns = "clipper-stranding";
  const p = pooler(ctx, ns);
  const s = loadStackSettings(STACK);
  const selector = selectorLabels(DEPLOYMENT_NAME);
  await applyObjects(ctx, [namespaceManifest(ns)]);
  try {
    await applyObjects(ctx, intoNamespace(objects, ns, strandingSpreadConstraints(s.workload, selector)));
    const reports = await policyReports(p);
    assert.equal(
      reports.length,
      1,
      `the policy pack reports the live stranding spread: ${reports.join("; ")}`,
    );
    assert.match(reports[0], /nodeTaintsPolicy unset/);
    const before = (await settled(p, 60_000)).pods;
    const nodes = before.map((x) => x.node ?? "");
    assert.equal(new Set(nodes).size, p.replicas, `pods on distinct nodes (${describe(before)})`);
    const free = NODE_NAMES.filter((n) => !nodes.includes(n));
    const [a, x] = nodes;
    const sampler = startSampler(p, { limitMs: 180_000 });
    try {
      for (const n of free) await cordon(p, n);
      const t = Date.now();
      const d = await drain(p, x, 60);
      assert.equal(d.code, 0, `drain ${x} (the PDB allows the first eviction):\n${d.output}`);
      const pending = await waitFor(
        "a pooler pod Pending on the stranding spread",
        async () => {
          const { pods } = await observe(p);
          return pods.find((y) => !y.terminating && y.unschedulable !== undefined);
        },
        BOUNDS.readyAfterDrainMs,
        250,
      );
      ctx.log(
        `  stranded ${((Date.now() - t) / 1000).toFixed(1)} s after the drain began: ${pending.unschedulable}`,
      );
      assert.match(pending.unschedulable ?? "", /didn't match pod topology spread constraints/);
      assert.match(pending.unschedulable ?? "", /were unschedulable/);
      await sleep(BOUNDS.strandedForMs);
      const later = await observe(p);
      const still = later.pods.find((y) => y.name === pending.name);
      assert.ok(
        still && still.unschedulable !== undefined,
        `still Pending ${BOUNDS.strandedForMs / 1000} s later`,
      );
      assert.equal(serving(later.pods).length, 1, `one replica serves (${describe(later.pods)})`);
      assert.equal(later.pdb?.disruptionsAllowed, 0, "the PDB allows no further disruption");
      const events = await failedScheduling(p, t);
      assert.ok(
        events.some((e) => /didn't match pod topology spread constraints/.test(e)),
        `a FailedScheduling event names the spread: ${events.join("; ")}`,
      );
      // The fix, applied over the stranded Deployment: a new revision, both pods on the one usable node.
      const fixed = spreadConstraints(s.workload, selector);
      await applyObjects(ctx, intoNamespace(objects, ns, fixed));
      assert.deepEqual(await policyReports(p), [], "the policy pack accepts the fixed spread");
      assert.deepEqual(await liveSpread(p), fixed, "the live spread is exactly the rendered one");
      const { ms, pods } = await settled(p, 60_000);
      ctx.log(`  with the fixed spread: ${p.replicas} Ready ${(ms / 1000).toFixed(1)} s after the apply`);
      assert.deepEqual(
        pods.map((y) => y.node),
        [a, a],
        `both on ${a}, the one usable node (${describe(pods)})`,
      );
      expectClean("stranding drain", await sampler.stop(), ctx.log);
    } finally {
      await sampler.stop();
      await uncordonAll(p);
    }
  } finally {
    await dropNamespace(ctx, ns);
  }
}

/** A pod pinned to `node` (no scheduler) that takes all but `leaveMilliCpu` of its allocatable CPU. */
async function fill(ctx: MaintenanceContext, node: string, leaveMilliCpu: number): Promise<string> {
  const n = await getJson<KubeObject & { status: { allocatable: { cpu: string } } }>(ctx.world.kubectl, [
    "node",
    node,
  ]);
  const cpu = n.status.allocatable.cpu;
  const milli = cpu.endsWith("m") ? Number(cpu.slice(0, -1)) : Number(cpu) * 1000;
  const name = `e2e-filler-${node}`;
  await applyObjects(ctx, [
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "default", labels: { "clipper.io/e2e": "filler" } },
      spec: {
        nodeName: node,
        containers: [
          {
            name: "filler",
            image: "registry.k8s.io/pause:3.10",
            resources: { requests: { cpu: `${milli - leaveMilliCpu}m` } },
          },
        ],
      },
    },
  ]);
  return name;
}

/**
 * Scenario 5, the reason for the ScheduleAnyway default: the one usable node without a pooler pod has no
 * room. With a hard spread (Honor, as `spreadWhenUnsatisfiable: DoNotSchedule` renders it) the evicted pod
 * stays Pending; the default soft spread, applied over it, puts it next to the other pod.
 */
export async function fullNodeDrain(
  ctx: MaintenanceContext,
  objects: readonly RenderedObject[],
): Promise<void> {
  const ns = "clipper-full-node";
  const p = pooler(ctx, ns);
  const s = loadStackSettings(STACK);
  const selector = selectorLabels(DEPLOYMENT_NAME);
  const hard = spreadConstraints({ ...s.workload, spreadWhenUnsatisfiable: "DoNotSchedule" }, selector);
  const filler: string[] = [];
  await applyObjects(ctx, [namespaceManifest(ns)]);
  try {
    await applyObjects(ctx, intoNamespace(objects, ns, hard));
    assert.deepEqual(await policyReports(p), [], "the policy pack allows the hard spread with Honor");
    const before = (await settled(p, 60_000)).pods;
    const nodes = before.map((x) => x.node ?? "");
    const [a, x] = nodes;
    const free = NODE_NAMES.filter((n) => !nodes.includes(n));
    // Leave less CPU than one pooler pod requests (the render's containers, summed).
    for (const n of free) filler.push(await fill(ctx, n, 50));
    const sampler = startSampler(p, { limitMs: 180_000 });
    try {
      const t = Date.now();
      const d = await drain(p, x, 60);
      assert.equal(d.code, 0, `drain ${x}:\n${d.output}`);
      const pending = await waitFor(
        "a pooler pod Pending on the hard spread",
        async () => (await observe(p)).pods.find((y) => !y.terminating && y.unschedulable !== undefined),
        BOUNDS.readyAfterDrainMs,
        250,
      );
      ctx.log(`  hard spread, free node full: ${pending.unschedulable}`);
      assert.match(pending.unschedulable ?? "", /Insufficient cpu/);
      assert.match(pending.unschedulable ?? "", /didn't match pod topology spread constraints/);
      assert.equal((await observe(p)).pdb?.disruptionsAllowed, 0, "the PDB allows nothing more");
      const fixed = spreadConstraints(s.workload, selector);
      await applyObjects(ctx, intoNamespace(objects, ns, fixed));
      const { ms, pods } = await settled(p, 60_000);
      ctx.log(
        `  default soft spread: ${p.replicas} Ready ${(ms / 1000).toFixed(1)} s after the apply ` +
          `(${((Date.now() - t) / 1000).toFixed(1)} s after the drain began)`,
      );
      assert.deepEqual(
        pods.map((y) => y.node),
        [a, a],
        `both on ${a}, next to each other (${describe(pods)})`,
      );
      expectClean("drain next to a full node", await sampler.stop(), ctx.log);
    } finally {
      await sampler.stop();
      await uncordonAll(p);
    }
  } finally {
    for (const f of filler) {
      await ctx.world.kubectlRaw(["delete", "pod", f, "-n", "default", "--grace-period=0", "--force"]);
    }
    await dropNamespace(ctx, ns);
  }
}

/** The render's Deployment and PDB (what the drain needs; kwok needs no ConfigMap or Secret). */
async function renderedPooler(ctx: MaintenanceContext): Promise<RenderedObject[]> {
  const r = await render(STACK, path.join(ctx.world.dir, "maintenance-render"));
  return [objectOf(r, "Deployment"), objectOf(r, "PodDisruptionBudget")];
}

/** The offline half: everything that needs no `pulumi up`. */
export async function runMaintenanceRender(ctx: MaintenanceContext): Promise<Timings> {
  const timings: Timings = [];
  const objects = await renderedPooler(ctx);
  await timed(timings, "negative: the old spread strands a pod next to a cordoned node", ctx.log, () =>
    strandingDrain(ctx, objects),
  );
  const ns = "clipper-drain";
  const p = pooler(ctx, ns);
  await applyObjects(ctx, [namespaceManifest(ns)]);
  try {
    await applyObjects(ctx, intoNamespace(objects, ns));
    assert.deepEqual(await policyReports(p), [], "the policy pack accepts the rendered spread");
    await timed(timings, "render: drain in steady state", ctx.log, () => steadyDrain(p));
    await timed(timings, "render: cordon all but one, then drain", ctx.log, () => cordonedDrain(p));
  } finally {
    await dropNamespace(ctx, ns);
  }
  await timed(timings, "render: hard spread next to a full node (why ScheduleAnyway)", ctx.log, () =>
    fullNodeDrain(ctx, objects),
  );
  return timings;
}

/**
 * The live half, on the stack `pulumi` has already brought up: the drains of the render on the Deployment
 * the provider made; the hard spread by `pulumi up`; a drain during a `pulumi up` that rolls the pods.
 */
export async function runMaintenanceLive(
  ctx: MaintenanceContext & { pulumi: PulumiStack; up: (extra?: string[]) => Promise<void> },
): Promise<Timings> {
  const timings: Timings = [];
  const s = loadStackSettings(STACK);
  const p = pooler(ctx, s.namespace);
  const selector = selectorLabels(DEPLOYMENT_NAME);
  assert.deepEqual(await liveSpread(p), spreadConstraints(s.workload, selector), "live spread = rendered");
  assert.deepEqual(await policyReports(p), [], "the policy pack accepts the live Deployment");
  await timed(timings, "live: drain in steady state", ctx.log, () => steadyDrain(p));
  await timed(timings, "live: cordon all but one, then drain", ctx.log, () => cordonedDrain(p));
  await timed(timings, "live: the same with spreadWhenUnsatisfiable DoNotSchedule", ctx.log, async () => {
    await ctx.pulumi.configSet("pgbouncer.spreadWhenUnsatisfiable", "DoNotSchedule");
    await ctx.up();
    const hard = spreadConstraints({ ...s.workload, spreadWhenUnsatisfiable: "DoNotSchedule" }, selector);
    assert.deepEqual(await liveSpread(p), hard, "one entry: the provider dropped the ScheduleAnyway entry");
    assert.deepEqual(await policyReports(p), [], "the policy pack accepts the hard spread (Honor)");
    await cordonedDrain(p);
  });
  await timed(timings, "live: drain during a pulumi up that rolls the pods", ctx.log, async () => {
    // Back to the default spread in the same `up`: the pods roll for the pool size and the spread.
    await ctx.pulumi.ok(["config", "rm", "--path", "pgbouncer.spreadWhenUnsatisfiable"]);
    await drainDuringUp(ctx, p);
    assert.deepEqual(await liveSpread(p), spreadConstraints(s.workload, selector), "back to the soft spread");
  });
  return timings;
}

type ReplicaSet = KubeObject & { status?: { replicas?: number } };

/** Scenario 3: a changed pool size rolls the pods; a node holding an old pod is drained meanwhile. */
async function drainDuringUp(ctx: MaintenanceContext & { pulumi: PulumiStack }, p: Pooler): Promise<void> {
  const s = loadStackSettings(STACK);
  const before = (await settled(p, 60_000)).pods;
  const oldRevision = before[0].revision;
  const poolSize = s.pool.defaultPoolSize - 10;
  await ctx.pulumi.configSet("pool.defaultPoolSize", String(poolSize));
  const sampler = startSampler(p, { limitMs: 400_000 });
  let running: Promise<unknown> | undefined;
  try {
    const up = ctx.pulumi.run(["up", "--yes", "--skip-preview", "--policy-pack", "policy"], {
      timeoutMs: 300_000,
    });
    running = up;
    const newRs = await waitFor(
      "the new ReplicaSet to have a pod",
      async () => {
        const rss = (
          await getJson<{ items: ReplicaSet[] }>(p.kubectl, ["rs", "-n", p.namespace, "-l", p.selector])
        ).items;
        return rss.find(
          (r) => r.metadata.labels?.["pod-template-hash"] !== oldRevision && (r.status?.replicas ?? 0) >= 1,
        );
      },
      240_000,
      250,
    );
    const { pods } = await observe(p);
    const victim = pods.find((x) => x.revision === oldRevision && !x.terminating && x.node)?.node;
    assert.ok(victim, `a node still holds an old pod when ${newRs.metadata.name} starts (${describe(pods)})`);
    const d = await drain(p, victim, 180);
    const result = await up;
    assert.equal(
      result.code,
      0,
      `pulumi up during the drain:\n${result.output.split("\n").slice(-30).join("\n")}`,
    );
    assert.equal(d.code, 0, `drain ${victim} during the up:\n${d.output}`);
    await p.kubectl(["-n", p.namespace, "rollout", "status", `deployment/${p.deployment}`, "--timeout=120s"]);
    const after = (await settled(p, BOUNDS.readyAfterDrainMs)).pods;
    ctx.log(
      `  drain ${victim} during the up: ${(d.ms / 1000).toFixed(1)} s, ${d.pdbRefusals} PDB refusals; after: ${describe(after)}`,
    );
    assert.ok(
      after.every((x) => x.revision === newRs.metadata.labels?.["pod-template-hash"]),
      "every pod of the new revision",
    );
    assert.equal(new Set(after.map((x) => x.node)).size, p.replicas, "on distinct nodes (2 usable remain)");
    assert.ok(!after.some((x) => x.node === victim), `none on the drained ${victim}`);
    expectClean(`drain ${victim} during pulumi up`, await sampler.stop(), ctx.log);
  } finally {
    // On a failure, the `pulumi up` still runs: wait for it (it is bounded) rather than leave it behind.
    await running;
    await sampler.stop();
    await uncordonAll(p);
  }
}
