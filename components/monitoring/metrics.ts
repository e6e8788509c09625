/**
 * What prometheus-community/pgbouncer_exporter 0.12.1 exports (collector.go of that release), and a small
 * PromQL scanner that lists the metric names and label names an expression uses. Release 0.11.0 renamed
 * `pgbouncer_stats_*` to `pgbouncer_stats_totals_*`; most published rules still query the old names and
 * return nothing, which is why every expression of this module is checked against this list.
 */

const POOL = ["database", "user"] as const;
const STATS = ["database"] as const;
const DATABASES = ["name", "host", "port", "database", "force_user", "pool_mode"] as const;

/** Metric name -> the labels the exporter sets (Prometheus adds the target labels on top). */
export const EXPORTER_METRICS = {
  pgbouncer_up: [],
  pgbouncer_version_info: ["version"],
  pgbouncer_exporter_build_info: [],
  // SHOW LISTS
  pgbouncer_databases: [],
  pgbouncer_users: [],
  pgbouncer_pools: [],
  pgbouncer_free_clients: [],
  pgbouncer_used_clients: [],
  pgbouncer_login_clients: [],
  pgbouncer_free_servers: [],
  pgbouncer_used_servers: [],
  pgbouncer_cached_dns_names: [],
  pgbouncer_cached_dns_zones: [],
  pgbouncer_in_flight_dns_queries: [],
  // SHOW CONFIG (there is no metric for default_pool_size or max_db_connections)
  pgbouncer_config_max_client_connections: [],
  pgbouncer_config_max_user_connections: [],
  // SHOW CLIENTS
  pgbouncer_client_connections: ["database", "user", "application_name", "state"],
  // SHOW DATABASES
  pgbouncer_databases_pool_size: DATABASES,
  pgbouncer_databases_reserve_pool: DATABASES,
  pgbouncer_databases_max_connections: DATABASES,
  pgbouncer_databases_current_connections: DATABASES,
  pgbouncer_databases_paused: DATABASES,
  pgbouncer_databases_disabled: DATABASES,
  // SHOW STATS_TOTALS
  pgbouncer_stats_totals_queries_pooled_total: STATS,
  pgbouncer_stats_totals_queries_duration_seconds_total: STATS,
  pgbouncer_stats_totals_received_bytes_total: STATS,
  pgbouncer_stats_totals_sent_bytes_total: STATS,
  pgbouncer_stats_totals_client_wait_seconds_total: STATS,
  pgbouncer_stats_totals_sql_transactions_pooled_total: STATS,
  pgbouncer_stats_totals_server_in_transaction_seconds_total: STATS,
  pgbouncer_stats_totals_client_parses_total: STATS,
  pgbouncer_stats_totals_server_parses_total: STATS,
  pgbouncer_stats_totals_binds_total: STATS,
  pgbouncer_stats_totals_server_assignments_total: STATS,
  // SHOW POOLS
  pgbouncer_pools_client_active_connections: POOL,
  pgbouncer_pools_client_active_cancel_connections: POOL,
  pgbouncer_pools_client_waiting_connections: POOL,
  pgbouncer_pools_client_waiting_cancel_connections: POOL,
  pgbouncer_pools_server_active_connections: POOL,
  pgbouncer_pools_server_active_cancel_connections: POOL,
  pgbouncer_pools_server_being_canceled_connections: POOL,
  pgbouncer_pools_server_idle_connections: POOL,
  pgbouncer_pools_server_used_connections: POOL,
  pgbouncer_pools_server_testing_connections: POOL,
  pgbouncer_pools_server_login_connections: POOL,
  /** Whole seconds only: a sub-second wait reads 0. */
  pgbouncer_pools_client_maxwait_seconds: POOL,
} as const satisfies Record<string, readonly string[]>;

export type ExporterMetric = keyof typeof EXPORTER_METRICS;

/** Labels Prometheus attaches to every series of a target (`up` is Prometheus's own, per target). */
export const TARGET_LABELS = ["instance", "job"] as const;

/** Prometheus's per-target series, usable next to the exporter's. */
export const PROMETHEUS_METRICS = { up: [] } as const satisfies Record<string, readonly string[]>;

export function isExporterMetric(name: string): name is ExporterMetric {
  return Object.prototype.hasOwnProperty.call(EXPORTER_METRICS, name);
}

/** Labels a series of `metric` carries once scraped: the exporter's plus the target labels. */
export function labelsOf(metric: string): readonly string[] {
  const own: readonly string[] | undefined = isExporterMetric(metric)
    ? EXPORTER_METRICS[metric]
    : metric === "up"
      ? PROMETHEUS_METRICS.up
      : undefined;
  if (own === undefined) throw new Error(`${metric} is not exported by pgbouncer_exporter 0.12.1`);
  return [...own, ...TARGET_LABELS];
}

const KEYWORDS = new Set([
  // aggregation operators (may be written `sum by (x) (...)`, so not always followed by a parenthesis)
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
  "limitk",
  "limit_ratio",
  // binary operators and modifiers
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "atan2",
  // literals
  "inf",
  "nan",
]);

/** Removes string literals, so `{state="active"}` or `label_replace(..., "x")` names nothing. */
function stripStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
}

/**
 * Metric names a PromQL expression reads, sorted and unique. Functions, aggregation operators, keywords,
 * label names (in matchers and in by/on/without/ignoring/group_* lists), durations and numbers are not
 * metric names.
 */
export function metricNamesIn(expr: string): string[] {
  const s = stripStrings(expr)
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\boffset\s+-?[0-9a-z]+/gi, " ")
    .replace(/(^|[^A-Za-z0-9_:.])(0x[0-9a-f]+|\d+(\.\d*)?(e[+-]?\d+)?|\.\d+)/gi, "$1 ");
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const rest = s.slice((m.index ?? 0) + word.length);
    if (/^\s*\(/.test(rest)) continue; // a function call or an aggregation
    if (KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

/**
 * Label names an expression relies on: in matchers, and in by/on/without/ignoring/group_left/group_right
 * lists. Each must exist on the series it is applied to, or a `by` silently groups everything into one
 * series and an `on` silently matches nothing.
 */
export function labelNamesIn(expr: string): string[] {
  const s = stripStrings(expr);
  const names = new Set<string>();
  for (const m of s.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/gi)) {
    for (const l of m[1].split(",")) if (l.trim() !== "") names.add(l.trim());
  }
  for (const m of s.matchAll(/\{([^}]*)\}/g)) {
    for (const mm of m[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)) names.add(mm[1]);
  }
  return [...names].sort();
}

/** The text inside the parenthesis that opens at `open` (which must be a "("). */
function parenthesized(s: string, open: number): string {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === "(") depth++;
    else if (s[i] === ")" && --depth === 0) return s.slice(open + 1, i);
  }
  return s.slice(open + 1);
}

function knownMetric(m: string): boolean {
  return isExporterMetric(m) || m === "up";
}

/**
 * Problems with an expression, empty when it is sound: metrics the exporter does not export, matchers on
 * labels their metric lacks, `by`/`without` labels missing from a metric being aggregated, and
 * `on`/`ignoring`/`group_*` labels missing from any metric of the expression (both sides of a match must
 * carry them, or it matches nothing: the published `sum(x) >= pgbouncer_config_max_client_connections`).
 */
export function checkExpression(expr: string): string[] {
  const problems: string[] = [];
  const s = stripStrings(expr);
  const metrics = metricNamesIn(s);
  if (metrics.length === 0) problems.push(`names no metric: ${expr}`);
  for (const m of metrics) {
    if (!knownMetric(m)) problems.push(`${m} is not exported by pgbouncer_exporter 0.12.1`);
  }
  const missingOn = (label: string, scope: string[]) =>
    scope.filter((m) => knownMetric(m) && !labelsOf(m).includes(label));
  for (const m of s.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}/g)) {
    if (!knownMetric(m[1])) continue;
    for (const mm of m[2].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      if (!labelsOf(m[1]).includes(mm[1])) problems.push(`label ${mm[1]} is not on ${m[1]}`);
    }
  }
  for (const m of s.matchAll(/\b(by|without)\s*\(([^)]*)\)\s*\(/gi)) {
    const scope = metricNamesIn(parenthesized(s, (m.index ?? 0) + m[0].length - 1));
    for (const l of m[2].split(",").map((x) => x.trim())) {
      const missing = l === "" ? [] : missingOn(l, scope);
      if (missing.length > 0) problems.push(`${m[1]} label ${l} is not on ${missing.join(", ")}`);
    }
  }
  for (const m of s.matchAll(/\b(on|ignoring|group_left|group_right)\s*\(([^)]*)\)/gi)) {
    for (const l of m[2].split(",").map((x) => x.trim())) {
      const missing = l === "" ? [] : missingOn(l, metrics);
      if (missing.length > 0) problems.push(`${m[1]} label ${l} is not on ${missing.join(", ")}`);
    }
  }
  return problems;
}
