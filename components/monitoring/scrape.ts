/**
 * How Prometheus scrapes the exporter sidecar: a PodMonitor for prometheus-operator, or a scrape job plus
 * `prometheus.io/*` pod annotations for a plain Prometheus. Both set `job` to the monitoring settings' job
 * name, which every rule and panel selects on.
 */
import type { MonitoringSettings } from "./settings";

export const METRICS_PATH = "/metrics";

/**
 * The rules ConfigMap's fixed name in `plain` mode: a threshold change or a certificate renewal updates it in
 * place, so a Prometheus that mounts it by name, or a sidecar that finds it by label, keeps finding it.
 */
export const RULES_CONFIGMAP = "pgbouncer-monitoring-rules";

export type ScrapeSettings = Pick<MonitoringSettings, "jobName" | "scrapeIntervalSeconds">;

/** Where the exporter runs: the pooler's pods. */
export interface ScrapeTarget {
  readonly namespace: string;
  /** Labels of the PgBouncer pods. */
  readonly podSelector: Readonly<Record<string, string>>;
  /**
   * Names of the exporters' container ports: one per PgBouncer process of a pod.
   * @default ["metrics"]
   */
  readonly portNames?: readonly string[];
}

function portNamesOf(target: ScrapeTarget): readonly string[] {
  return target.portNames && target.portNames.length > 0 ? target.portNames : ["metrics"];
}

/** The `spec` of a `monitoring.coreos.com/v1` PodMonitor in the pooler's namespace. */
export function podMonitorSpec(m: ScrapeSettings, target: ScrapeTarget) {
  return {
    selector: { matchLabels: { ...target.podSelector } },
    namespaceSelector: { matchNames: [target.namespace] },
    podMetricsEndpoints: portNamesOf(target).map((port) => ({
      port,
      path: METRICS_PATH,
      interval: `${m.scrapeIntervalSeconds}s`,
      // the operator names the job "<namespace>/<podmonitor>"; the rules select on a stable name
      relabelings: [{ action: "replace" as const, targetLabel: "job", replacement: m.jobName }],
    })),
  };
}

/** Annotations for the pods; set only for a plain Prometheus, so the operator does not scrape twice. */
export function scrapeAnnotations(
  m: Pick<MonitoringSettings, "mode">,
  exporterPort: number,
): Record<string, string> {
  if (m.mode !== "plain") return {};
  return {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": String(exporterPort),
    "prometheus.io/path": METRICS_PATH,
  };
}

function basics(m: ScrapeSettings) {
  return {
    job_name: m.jobName,
    scrape_interval: `${m.scrapeIntervalSeconds}s`,
    metrics_path: METRICS_PATH,
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Kubernetes service discovery's meta label for a pod label (non-alphanumerics become `_`). */
export function podLabelMeta(label: string): string {
  return `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, "_")}`;
}

/**
 * A `scrape_configs` entry for a plain Prometheus in the cluster: pods of the namespace that carry the
 * selector labels and the scrape annotation, on the exporter's named port.
 */
export function kubernetesScrapeJob(m: ScrapeSettings, target: ScrapeTarget) {
  return {
    ...basics(m),
    kubernetes_sd_configs: [{ role: "pod", namespaces: { names: [target.namespace] } }],
    relabel_configs: [
      {
        source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        action: "keep",
        regex: "true",
      },
      ...Object.entries(target.podSelector).map(([k, v]) => ({
        source_labels: [podLabelMeta(k)],
        action: "keep",
        regex: escapeRegex(v),
      })),
      {
        source_labels: ["__meta_kubernetes_pod_container_port_name"],
        action: "keep",
        regex: portNamesOf(target).map(escapeRegex).join("|"),
      },
      { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
      { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
    ],
  };
}

/** The same job over fixed `host:port` targets (the local end-to-end run). */
export function staticScrapeJob(m: ScrapeSettings, targets: readonly string[]) {
  return { ...basics(m), static_configs: [{ targets: [...targets] }] };
}
