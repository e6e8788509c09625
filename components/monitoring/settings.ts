/**
 * The `monitoring` config section: scrape config, alert rules and the Grafana dashboard, each setting declared
 * once (see components/common/schema.ts), and its check against the pool's settings.
 */
import { type Checks, type Infer, bool, defaultsOf, int, labels, oneOf, section, string } from "../common";
import type { PoolSettings } from "../pgbouncer";
import { derivedExhaustion, exhaustionRange } from "./thresholds";

const JOB_NAME = /^[a-zA-Z_][a-zA-Z0-9_.-]{0,62}$/;
const DASHBOARD_UID = /^[a-zA-Z0-9_-]{1,40}$/;
const HTTP_URL = /^https?:\/\/[^\s#]+$/;
const forSeconds = (def: number) => int(0, 86400).default(def);

/** How long each condition must hold before its alert fires, in seconds. */
export const ALERT_FOR = section({
  /** @default 120 */
  poolExhaustion: forSeconds(120),
  /** @default 300 */
  highWaitTime: forSeconds(300),
  /** @default 120 */
  waitingClients: forSeconds(120),
  /** @default 60 */
  down: forSeconds(60),
  /** @default 300 */
  highErrors: forSeconds(300),
  /** @default 600 */
  highUtilization: forSeconds(600),
});
export type AlertForSettings = Infer<typeof ALERT_FOR.shape>;

/** The `monitoring` config section. */
export const MONITORING = section(
  {
    /**
     * `prometheus-operator`: a PodMonitor and a PrometheusRule; `plain`: a rules ConfigMap, a scrape job (a
     * stack output) and `prometheus.io/*` pod annotations. @default prometheus-operator
     */
    mode: oneOf(["prometheus-operator", "plain"]).default("prometheus-operator"),
    /** Labels the operator's `ruleSelector` requires on a PrometheusRule. @default release: kube-prometheus-stack */
    ruleLabels: labels().default({ release: "kube-prometheus-stack" }),
    /** Labels the operator's `podMonitorSelector` requires. @default release: kube-prometheus-stack */
    podMonitorLabels: labels().default({ release: "kube-prometheus-stack" }),
    /**
     * `plain` mode: labels of the rules ConfigMap (`pgbouncer-monitoring-rules`, the stack output
     * `rulesConfigMap`), for a rules sidecar that selects ConfigMaps by label (e.g. k8s-sidecar's `LABEL` and
     * `LABEL_VALUE`) to find it. @default prometheus_rule: 1
     */
    rulesConfigMapLabels: labels().default({ prometheus_rule: "1" }),
    /** The `job` label of the exporter's series; every rule and panel selects on it. @default pgbouncer */
    jobName: string(JOB_NAME, "a Prometheus job name such as pgbouncer").default("pgbouncer"),
    /** @default 10 */
    scrapeIntervalSeconds: int(1, 300).default(10),
    /** Rule group evaluation interval. @default 30 */
    evaluationIntervalSeconds: int(1, 300).default(30),
    /** Window of every `rate()`; at least 4 scrape intervals. @default 60 */
    rateWindowSeconds: int(4, 3600).default(60),
    /** Whether to push the Grafana folder and dashboard (needs `grafana:url` and `grafana:auth`). @default true */
    dashboard: bool().default(true),
    /** Grafana folder title. @default Clipper */
    grafanaFolder: string().default("Clipper"),
    /** Dashboard uid; differs per stack when stacks share a Grafana. @default clipper-pgbouncer */
    dashboardUid: string(DASHBOARD_UID, "1 to 40 letters, digits, - or _").default("clipper-pgbouncer"),
    /** Prometheus datasource the dashboard's `datasource` variable starts on. @default Prometheus */
    datasourceName: string().default("Prometheus"),
    /** Base URL of the runbook; each alert links `<base>#<alertname in lower case>`. Required. */
    runbookBaseUrl: string(HTTP_URL, "an http(s) URL without a #fragment"),
    /**
     * Busy server connections (per process and database) at which `PgBouncerPoolExhaustion` fires; from 1 to
     * one below `pool.maxDbConnections` (a cap of 1 allows only 1).
     * @default 96% of `pool.maxDbConnections` rounded up, but at most one below it (48 of 50, 19 of 20, 4 of
     * 5); a stack with a cap of 1 must set it
     */
    exhaustionServerConnections: int(1, 10000).optional(),
    for: ALERT_FOR,
  },
  {
    check: (m, c) => {
      if (m.rateWindowSeconds < 4 * m.scrapeIntervalSeconds) {
        c.add(
          "rateWindowSeconds",
          `is ${m.rateWindowSeconds}; must be at least 4 x ${c.key("scrapeIntervalSeconds")} ` +
            `(${4 * m.scrapeIntervalSeconds}), or rate() sees too few samples and gaps read as no data`,
        );
      }
      if (m.evaluationIntervalSeconds < m.scrapeIntervalSeconds) {
        c.add(
          "evaluationIntervalSeconds",
          `is ${m.evaluationIntervalSeconds}; must be at least ${c.key("scrapeIntervalSeconds")} ` +
            `(${m.scrapeIntervalSeconds}): evaluating between scrapes only repeats the same samples`,
        );
      }
    },
  },
).landsIn("the alert rules, the PodMonitor and the Grafana dashboard");
export type MonitoringSettings = Infer<typeof MONITORING.shape>;
/** How the cluster's Prometheus finds targets and rules. */
export type MonitoringMode = MonitoringSettings["mode"];
export const MONITORING_DEFAULTS = defaultsOf(MONITORING);

/**
 * Checks the monitoring settings against the pool's: an explicit exhaustion threshold must lie below the
 * per-process cap, and a cap of 1 needs one (no derived threshold lies below it).
 */
export function checkMonitoringAgainstPool(
  s: { monitoring: MonitoringSettings; pool: Pick<PoolSettings, "maxDbConnections"> },
  c: Checks,
): void {
  const cap = s.pool.maxDbConnections;
  const explicit = s.monitoring.exhaustionServerConnections;
  const field = "monitoring.exhaustionServerConnections";
  if (explicit === undefined) {
    if (derivedExhaustion(cap) === undefined) {
      c.add(
        field,
        `is not set, and ${c.key("pool.maxDbConnections")} is ${cap}: no busy count below the cap is left to ` +
          `alert at; set it to 1 (PgBouncerPoolExhaustion then fires when the one connection is busy)`,
      );
    }
    return;
  }
  const range = exhaustionRange(cap);
  if (explicit < range.min || explicit > range.max) {
    c.add(
      field,
      `is ${explicit}; must be an integer from ${range.min} to ${range.max}, below ` +
        `${c.key("pool.maxDbConnections")} (${cap}), or PgBouncerPoolExhaustion fires only once the pool is full`,
    );
  }
}
