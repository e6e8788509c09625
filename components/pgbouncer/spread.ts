/**
 * How the pooler's replicas spread over nodes (and zones). The reasoning behind each field is in
 * docs/runbook.md, "Maintenance": in short, only nodes a pod can use count as domains, so a drain next to a
 * cordoned node cannot leave a replica Pending.
 */
/** The well-known zone label of cloud nodes. */
export const ZONE_TOPOLOGY_KEY = "topology.kubernetes.io/zone";
/** The label the StatefulSet controller puts on each revision's pods. */
export const REVISION_LABEL = "controller-revision-hash";

export type WhenUnsatisfiable = "DoNotSchedule" | "ScheduleAnyway";
export type NodeInclusionPolicy = "Honor" | "Ignore";

/** A `topologySpreadConstraints` entry, as plain JSON (it needs no Pulumi inputs). */
export interface SpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  whenUnsatisfiable: WhenUnsatisfiable;
  nodeTaintsPolicy?: NodeInclusionPolicy;
  nodeAffinityPolicy?: NodeInclusionPolicy;
  labelSelector: { matchLabels: Record<string, string> };
  matchLabelKeys?: string[];
}

/** What the spread depends on: the fields of the same names of `WorkloadSettings` (settings.ts). */
export interface SpreadSettings {
  readonly spreadTopologyKey: string;
  readonly spreadWhenUnsatisfiable: WhenUnsatisfiable;
  readonly zoneSpread: boolean;
}

/**
 * The pod template's spread: one constraint over `spreadTopologyKey` (`spreadWhenUnsatisfiable`), plus a
 * soft one over zones when `zoneSpread` is set. Every constraint counts only nodes the pod may use
 * (`nodeTaintsPolicy: Honor`, so cordoned, NotReady and tainted nodes are no domains;
 * `nodeAffinityPolicy: Honor`, spelled out) and only pods of the same revision (`controller-revision-hash`), so
 * a rolling update spreads the new pods instead of counting the old ones it is about to delete.
 */
export function spreadConstraints(
  workload: SpreadSettings,
  selector: Readonly<Record<string, string>>,
): SpreadConstraint[] {
  const spread = (topologyKey: string, whenUnsatisfiable: WhenUnsatisfiable): SpreadConstraint => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable,
    nodeTaintsPolicy: "Honor",
    nodeAffinityPolicy: "Honor",
    labelSelector: { matchLabels: { ...selector } },
    matchLabelKeys: [REVISION_LABEL],
  });
  return [
    spread(workload.spreadTopologyKey, workload.spreadWhenUnsatisfiable),
    ...(workload.zoneSpread ? [spread(ZONE_TOPOLOGY_KEY, "ScheduleAnyway")] : []),
  ];
}

/**
 * The spread this program once rendered, which strands a replica: `DoNotSchedule` with
 * `nodeTaintsPolicy` left at its default, `Ignore`, so cordoned nodes count as empty domains and a pod a
 * drain evicts next to a cordoned node stays Pending. Never rendered; it exists for the tests that must be
 * able to fail: the policy pack's failing case, and the end-to-end run's negative drain (applied to a
 * real control plane, where the evicted pod must stay Pending).
 */
export function strandingSpreadConstraints(
  workload: Pick<SpreadSettings, "spreadTopologyKey">,
  selector: Readonly<Record<string, string>>,
): SpreadConstraint[] {
  return [
    {
      maxSkew: 1,
      topologyKey: workload.spreadTopologyKey,
      whenUnsatisfiable: "DoNotSchedule",
      labelSelector: { matchLabels: { ...selector } },
    },
  ];
}
