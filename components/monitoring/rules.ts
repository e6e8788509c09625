/**
 * The six PgBouncer alerts, as one rule group, and its two deliveries: a Prometheus rules file (plain
 * Prometheus, through a ConfigMap) and a PrometheusRule spec (prometheus-operator).
 */
import * as yaml from "js-yaml";
import type { PoolSettings } from "../pgbouncer";
import { type QueryContext, queries, queryContext } from "./queries";
import type { AlertForSettings, MonitoringSettings } from "./settings";
import { ALERT_POLICY } from "./thresholds";

export const ALERT_NAMES = [
  "PgBouncerPoolExhaustion",
  "PgBouncerHighWaitTime",
  "PgBouncerWaitingClients",
  "PgBouncerDown",
  "PgBouncerHighErrors",
  "PgBouncerHighUtilization",
] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

export type Severity = "critical" | "warning";

export interface AlertRule<N extends string = AlertName> {
  readonly alert: N;
  readonly expr: string;
  /** Prometheus duration, e.g. `120s`. */
  readonly for: string;
  readonly labels: { readonly severity: Severity };
  readonly annotations: {
    readonly summary: string;
    readonly description: string;
    readonly runbook_url: string;
  };
}

export interface RuleGroup<N extends string = AlertName> {
  readonly name: string;
  /** Evaluation interval, e.g. `30s`. */
  readonly interval: string;
  readonly rules: readonly AlertRule<N>[];
}

/** What the rules need from the stack settings. */
export type RuleSettings = Pick<
  MonitoringSettings,
  | "jobName"
  | "rateWindowSeconds"
  | "scrapeIntervalSeconds"
  | "evaluationIntervalSeconds"
  | "runbookBaseUrl"
  | "exhaustionServerConnections"
> & { readonly for: AlertForSettings };

export type RulePoolSettings = Pick<
  PoolSettings,
  "maxDbConnections" | "maxClientConn" | "queryWaitTimeoutSeconds"
>;

const FOR_KEY: Record<AlertName, keyof AlertForSettings> = {
  PgBouncerPoolExhaustion: "poolExhaustion",
  PgBouncerHighWaitTime: "highWaitTime",
  PgBouncerWaitingClients: "waitingClients",
  PgBouncerDown: "down",
  PgBouncerHighErrors: "highErrors",
  PgBouncerHighUtilization: "highUtilization",
};

export function seconds(n: number): string {
  return `${n}s`;
}

const WHERE = "{{ $labels.instance }} database {{ $labels.database }}";

/** The alert rule group for one pool; every number in it comes from the pool and monitoring settings. */
export function alertRuleGroup(pool: RulePoolSettings, m: RuleSettings): RuleGroup {
  const c: QueryContext = queryContext(pool, m);
  const q = queries(c);
  const t = c.thresholds;
  const p = ALERT_POLICY;
  const rule = (
    alert: AlertName,
    severity: Severity,
    expr: string,
    summary: string,
    description: string,
  ): AlertRule => ({
    alert,
    expr,
    for: seconds(m.for[FOR_KEY[alert]]),
    labels: { severity },
    annotations: {
      summary,
      description,
      runbook_url: `${m.runbookBaseUrl}#${alert.toLowerCase()}`,
    },
  });
  const rules: AlertRule[] = [
    rule(
      "PgBouncerPoolExhaustion",
      "critical",
      `${q.busyServerConnections} >= ${t.exhaustionServerConnections}`,
      `PgBouncer pool nearly exhausted on ${WHERE}`,
      `{{ $value }} server connections are busy, at or above ${t.exhaustionServerConnections} ` +
        `(${t.exhaustionBasis}, the per-process server cap). ` +
        `New transactions queue for a server connection.`,
    ),
    rule(
      "PgBouncerHighWaitTime",
      "warning",
      `${q.averageWaitSeconds} > ${t.averageWaitSeconds}`,
      `PgBouncer clients wait long for a server connection on ${WHERE}`,
      `Clients waited on average {{ $value | humanizeDuration }} per transaction for a server connection ` +
        `over the last ${c.rateWindowSeconds}s (threshold ${t.averageWaitSeconds * 1000} ms): the rate of ` +
        `pgbouncer_stats_totals_client_wait_seconds_total divided by the rate of ` +
        `pgbouncer_stats_totals_sql_transactions_pooled_total. pgbouncer_pools_client_maxwait_seconds is ` +
        `not used: it has whole seconds only.`,
    ),
    rule(
      "PgBouncerWaitingClients",
      "warning",
      `${q.waitingClients} > ${t.waitingClients}`,
      `Clients queue for PgBouncer server connections on ${WHERE}`,
      `{{ $value }} clients are waiting for a server connection (threshold ${t.waitingClients}).`,
    ),
    rule(
      "PgBouncerDown",
      "critical",
      q.down,
      `PgBouncer or its exporter is down ({{ $labels.instance }})`,
      `pgbouncer_up is 0 (the exporter cannot query PgBouncer's admin console), or Prometheus cannot ` +
        `scrape the exporter (up is 0), or no target of job ${m.jobName} exists at all.`,
    ),
    rule(
      "PgBouncerHighErrors",
      "warning",
      `${q.timeoutErrorsPerSecond} > ${t.errorsPerSecond} or ${q.cancelsPerSecond} > ${t.errorsPerSecond}`,
      `PgBouncer clients are failing on ${WHERE}`,
      `About {{ $value | humanize }} client errors per second (threshold ${t.errorsPerSecond}/s). The ` +
        `exporter has no errors metric; this alert uses a named proxy. (a) query_wait_timeout ` +
        `disconnects: once the oldest waiting client is within two scrapes of query_wait_timeout ` +
        `(${c.queryWaitTimeoutSeconds}s), waiting clients time out at about waiting / ` +
        `${c.queryWaitTimeoutSeconds} per second. (b) cancel requests in flight (client active + waiting ` +
        `cancel connections), averaged over ${c.rateWindowSeconds}s: a lower bound of cancels per second ` +
        `while a cancel takes under a second. Rejections at max_client_conn and server login failures are ` +
        `not visible to the exporter.`,
    ),
    rule(
      "PgBouncerHighUtilization",
      "warning",
      `${q.serverUtilization} > ${t.utilizationRatio} or ${q.clientUtilization} > ${t.utilizationRatio}`,
      `PgBouncer pool highly utilized on {{ $labels.instance }}`,
      `{{ $value | humanizePercentage }} in use, above ${p.utilizationPercent}%: busy server connections ` +
        `against max_db_connections ${t.serverCap} (per database), or client connections against ` +
        `max_client_conn (${t.maxClientConn} configured).`,
    ),
  ];
  return { name: "pgbouncer", interval: seconds(m.evaluationIntervalSeconds), rules };
}

/** Plain objects only, so YAML and JSON renderers print exactly what Prometheus reads. */
function plain<N extends string>(group: RuleGroup<N>): { groups: RuleGroup<N>[] } {
  return { groups: [JSON.parse(JSON.stringify(group)) as RuleGroup<N>] };
}

/** A Prometheus rules file (`rule_files:`), for plain Prometheus. */
export function renderRulesFile<N extends string>(group: RuleGroup<N>): string {
  return yaml.dump(plain(group), { lineWidth: -1, noRefs: true, sortKeys: false });
}

/** The `spec` of a `monitoring.coreos.com/v1` PrometheusRule. */
export function prometheusRuleSpec<N extends string>(group: RuleGroup<N>): { groups: RuleGroup<N>[] } {
  return plain(group);
}

/** A whole PrometheusRule manifest; `labels` must match the operator's `ruleSelector`. */
export function prometheusRuleManifest(
  name: string,
  namespace: string,
  labels: Readonly<Record<string, string>>,
  group: RuleGroup,
) {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: { name, namespace, labels: { ...labels } },
    spec: prometheusRuleSpec(group),
  };
}
