import { ConfigReader, type IssueList } from "../common";
import type { PoolSettings } from "../pgbouncer";
import { derivedExhaustion, exhaustionRange } from "./thresholds";

/** How the cluster's Prometheus finds targets and rules. */
export type MonitoringMode = "prometheus-operator" | "plain";

/** How long each condition must hold before its alert fires, in seconds. */
export interface AlertForSettings {
  /** @default 120 */
  readonly poolExhaustion: number;
  /** @default 300 */
  readonly highWaitTime: number;
  /** @default 120 */
  readonly waitingClients: number;
  /** @default 60 */
  readonly down: number;
  /** @default 300 */
  readonly highErrors: number;
  /** @default 600 */
  readonly highUtilization: number;
}

/** The `monitoring` config section. */
export interface MonitoringSettings {
  /**
   * `prometheus-operator`: a PodMonitor and a PrometheusRule; `plain`: a rules ConfigMap, a scrape job (a
   * stack output) and `prometheus.io/*` pod annotations. @default prometheus-operator
   */
  readonly mode: MonitoringMode;
  /** Labels the operator's `ruleSelector` requires on a PrometheusRule. @default release: kube-prometheus-stack */
  readonly ruleLabels: Readonly<Record<string, string>>;
  /** Labels the operator's `podMonitorSelector` requires. @default release: kube-prometheus-stack */
  readonly podMonitorLabels: Readonly<Record<string, string>>;
  /** The `job` label of the exporter's series; every rule and panel selects on it. @default pgbouncer */
  readonly jobName: string;
  /** @default 10 */
  readonly scrapeIntervalSeconds: number;
  /** Rule group evaluation interval. @default 30 */
  readonly evaluationIntervalSeconds: number;
  /** Window of every `rate()`; at least 4 scrape intervals. @default 60 */
  readonly rateWindowSeconds: number;
  /** Whether to push the Grafana folder and dashboard (needs `grafana:url` and `grafana:auth`). @default true */
  readonly dashboard: boolean;
  /** Grafana folder title. @default Clipper */
  readonly grafanaFolder: string;
  /** Dashboard uid; differs per stack when stacks share a Grafana. @default clipper-pgbouncer */
  readonly dashboardUid: string;
  /** Prometheus datasource the dashboard's `datasource` variable starts on. @default Prometheus */
  readonly datasourceName: string;
  /** Base URL of the runbook; each alert links `<base>#<alertname in lower case>`. Required. */
  readonly runbookBaseUrl: string;
  /**
   * Busy server connections (per process and database) at which `PgBouncerPoolExhaustion` fires; from 1 to
   * one below `pool.maxDbConnections` (a cap of 1 allows only 1).
   * @default 96% of `pool.maxDbConnections` rounded up, but at most one below it (48 of 50, 19 of 20, 4 of
   * 5); a stack with a cap of 1 must set it
   */
  readonly exhaustionServerConnections?: number;
  readonly for: AlertForSettings;
}

export const ALERT_FOR_DEFAULTS: AlertForSettings = {
  poolExhaustion: 120,
  highWaitTime: 300,
  waitingClients: 120,
  down: 60,
  highErrors: 300,
  highUtilization: 600,
};

export const MONITORING_DEFAULTS: Omit<MonitoringSettings, "runbookBaseUrl"> = {
  mode: "prometheus-operator",
  ruleLabels: { release: "kube-prometheus-stack" },
  podMonitorLabels: { release: "kube-prometheus-stack" },
  jobName: "pgbouncer",
  scrapeIntervalSeconds: 10,
  evaluationIntervalSeconds: 30,
  rateWindowSeconds: 60,
  dashboard: true,
  grafanaFolder: "Clipper",
  dashboardUid: "clipper-pgbouncer",
  datasourceName: "Prometheus",
  for: ALERT_FOR_DEFAULTS,
};

const JOB_NAME = /^[a-zA-Z_][a-zA-Z0-9_.-]{0,62}$/;
const DASHBOARD_UID = /^[a-zA-Z0-9_-]{1,40}$/;
const HTTP_URL = /^https?:\/\/[^\s#]+$/;
const FOR_RANGE = { min: 0, max: 86400 };

/** `{ [key]: value }`, or nothing when the value is unset (an unset setting is an absent field). */
function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [k in K]?: V });
}

/** Reads and validates the `monitoring` section; problems go to the reader's issue list. */
export function readMonitoring(r: ConfigReader): MonitoringSettings {
  const d = MONITORING_DEFAULTS;
  const f = r.child("for");
  const df = d.for;
  const m: MonitoringSettings = {
    mode: r.oneOf("mode", d.mode, ["prometheus-operator", "plain"]),
    ruleLabels: r.labels("ruleLabels", d.ruleLabels),
    podMonitorLabels: r.labels("podMonitorLabels", d.podMonitorLabels),
    jobName: r.string("jobName", d.jobName, JOB_NAME, "a Prometheus job name such as pgbouncer"),
    scrapeIntervalSeconds: r.int("scrapeIntervalSeconds", d.scrapeIntervalSeconds, { min: 1, max: 300 }),
    evaluationIntervalSeconds: r.int("evaluationIntervalSeconds", d.evaluationIntervalSeconds, {
      min: 1,
      max: 300,
    }),
    rateWindowSeconds: r.int("rateWindowSeconds", d.rateWindowSeconds, { min: 4, max: 3600 }),
    dashboard: r.bool("dashboard", d.dashboard),
    grafanaFolder: r.string("grafanaFolder", d.grafanaFolder),
    dashboardUid: r.string("dashboardUid", d.dashboardUid, DASHBOARD_UID, "1 to 40 letters, digits, - or _"),
    datasourceName: r.string("datasourceName", d.datasourceName),
    runbookBaseUrl: r.string("runbookBaseUrl", undefined, HTTP_URL, "an http(s) URL without a #fragment"),
    ...optional(
      "exhaustionServerConnections",
      r.optionalInt("exhaustionServerConnections", { min: 1, max: 10000 }),
    ),
    for: {
      poolExhaustion: f.int("poolExhaustion", df.poolExhaustion, FOR_RANGE),
      highWaitTime: f.int("highWaitTime", df.highWaitTime, FOR_RANGE),
      waitingClients: f.int("waitingClients", df.waitingClients, FOR_RANGE),
      down: f.int("down", df.down, FOR_RANGE),
      highErrors: f.int("highErrors", df.highErrors, FOR_RANGE),
      highUtilization: f.int("highUtilization", df.highUtilization, FOR_RANGE),
    },
  };
  f.rejectUnknown();
  r.rejectUnknown();
  if (m.rateWindowSeconds < 4 * m.scrapeIntervalSeconds) {
    r.issues.add(
      `${r.key}.rateWindowSeconds`,
      `is ${m.rateWindowSeconds}; must be at least 4 x ${r.key}.scrapeIntervalSeconds ` +
        `(${4 * m.scrapeIntervalSeconds}), or rate() sees too few samples and gaps read as no data`,
    );
  }
  if (m.evaluationIntervalSeconds < m.scrapeIntervalSeconds) {
    r.issues.add(
      `${r.key}.evaluationIntervalSeconds`,
      `is ${m.evaluationIntervalSeconds}; must be at least ${r.key}.scrapeIntervalSeconds ` +
        `(${m.scrapeIntervalSeconds}): evaluating between scrapes only repeats the same samples`,
    );
  }
  return m;
}

/**
 * Checks the monitoring settings against the pool's: an explicit exhaustion threshold must lie below the
 * per-process cap, and a cap of 1 needs one (no derived threshold lies below it).
 */
export function checkMonitoringAgainstPool(
  issues: IssueList,
  keys: { monitoring: string; pool: string },
  s: { monitoring: MonitoringSettings; pool: Pick<PoolSettings, "maxDbConnections"> },
): void {
  const cap = s.pool.maxDbConnections;
  const explicit = s.monitoring.exhaustionServerConnections;
  const field = `${keys.monitoring}.exhaustionServerConnections`;
  if (explicit === undefined) {
    if (derivedExhaustion(cap) === undefined) {
      issues.add(
        field,
        `is not set, and ${keys.pool}.maxDbConnections is ${cap}: no busy count below the cap is left to ` +
          `alert at; set it to 1 (PgBouncerPoolExhaustion then fires when the one connection is busy)`,
      );
    }
    return;
  }
  const range = exhaustionRange(cap);
  if (explicit < range.min || explicit > range.max) {
    issues.add(
      field,
      `is ${explicit}; must be an integer from ${range.min} to ${range.max}, below ` +
        `${keys.pool}.maxDbConnections (${cap}), or PgBouncerPoolExhaustion fires only once the pool is full`,
    );
  }
}
