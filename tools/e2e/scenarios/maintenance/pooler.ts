/**
 * What the maintenance drains share: the bounds they assert, the pooler as a drain target, the policy
 * pack's view of the live spread, and the rendered StatefulSet and PDB applied into namespaces of their own.
 */
import * as assert from "node:assert/strict";
import { STATEFULSET_NAME } from "../../../../components/pgbouncer";
import { checkSpreadCannotStrand } from "../../../../policy/policies";
import { loadStackSettings } from "../../../../stacks/settings";
import { type KubeObject, getJson } from "../../clients/kubectl";
import type { PartContext } from "../../context";
import { MAINTENANCE_POOL, NODE_NAMES } from "../../world/kwok";
import type { RenderedObject } from "../renders";
import type { Pooler, SamplerReport } from "./drain";

export const STACK = "prod";
/** Bounds of the scenarios (the plan's proposals; the measured figures are logged next to them). */
export const BOUNDS = { drainS: 120, readyAfterDrainMs: 30_000, strandedForMs: 30_000, respreadMs: 120_000 };
const POOLER_SELECTOR = "app.kubernetes.io/name=pgbouncer";

/** The pooler's StatefulSet and PDB in `namespace`, as the drains watch them. */
export function pooler(ctx: PartContext, namespace: string, nodes: readonly string[] = NODE_NAMES): Pooler {
  const s = loadStackSettings(STACK);
  return {
    kubectl: ctx.world.kubectl,
    raw: ctx.world.kubectlRaw,
    namespace,
    workload: STATEFULSET_NAME,
    selector: POOLER_SELECTOR,
    replicas: s.workload.replicas,
    nodes,
    log: ctx.log,
  };
}

/**
 * The sampler saw no breach: at least one pod served at every sample, never more pod objects than replicas
 * (a StatefulSet starts a pod's replacement only once it has gone: no surge), and it sampled.
 */
export function expectClean(
  what: string,
  r: SamplerReport,
  log: (l: string) => void,
  replicas = loadStackSettings(STACK).workload.replicas,
): void {
  log(
    `  sampler (${what}): ${r.samples} samples, min serving ${r.minServing}, max disruptionsAllowed ` +
      `${r.maxDisruptionsAllowed}, at most ${r.maxPods} pods`,
  );
  assert.deepEqual(r.violations, [], `${what}: the PDB let the pooler drop below one serving pod`);
  assert.ok(r.maxPods <= replicas, `${what}: ${r.maxPods} pods at once, more than ${replicas} (a surge)`);
  assert.ok(r.samples > 3, `${what}: the sampler ran (${r.samples} samples)`);
}

/** The live StatefulSet's spread as the policy pack sees it: its reports. */
export async function policyReports(p: Pooler): Promise<string[]> {
  const live = await getJson(p.kubectl, ["statefulset", p.workload, "-n", p.namespace]);
  const reports: string[] = [];
  checkSpreadCannotStrand(
    { type: "kubernetes:apps/v1:StatefulSet", name: p.workload, props: live as Record<string, unknown> },
    (m) => reports.push(m),
  );
  return reports;
}

export async function liveSpread(p: Pooler): Promise<unknown> {
  const d = await getJson<
    KubeObject & { spec: { template: { spec: { topologySpreadConstraints?: unknown } } } }
  >(p.kubectl, ["statefulset", p.workload, "-n", p.namespace]);
  return d.spec.template.spec.topologySpreadConstraints;
}

/** The rendered StatefulSet and PDB, moved to `namespace`, with `spread` as the pod template's spread. */
export function intoNamespace(
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

/** The render's objects with the maintenance pool's toleration and node selector on the pod template. */
export function onMaintenancePool(objects: readonly RenderedObject[]): RenderedObject[] {
  const { key, value } = MAINTENANCE_POOL.label;
  return objects.map((o) => {
    const c = JSON.parse(JSON.stringify(o)) as RenderedObject & {
      spec: { template?: { spec: { nodeSelector?: Record<string, string>; tolerations?: unknown[] } } };
    };
    if (c.spec.template) {
      const pod = c.spec.template.spec;
      pod.nodeSelector = { ...pod.nodeSelector, [key]: value };
      pod.tolerations = [...(pod.tolerations ?? []), { key, operator: "Equal", value, effect: "NoSchedule" }];
    }
    return c;
  });
}

export async function applyObjects(ctx: PartContext, objects: readonly unknown[]): Promise<void> {
  for (const o of objects) {
    await ctx.world.kubectl(["apply", "--server-side", "--field-manager=clipper-e2e", "-f", "-"], {
      input: JSON.stringify(o),
    });
  }
}

/** A namespace of this e2e, gone (its fake pods deleted at once: kwok would take up to their grace period). */
export async function dropNamespace(ctx: PartContext, ns: string): Promise<void> {
  await ctx.world.kubectlRaw(["delete", "namespace", ns, "--wait=false", "--ignore-not-found"]);
  await ctx.world.kubectlRaw(["delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force"]);
}
