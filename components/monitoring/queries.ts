/**
 * The PromQL quantities the alerts compare and the dashboard draws, written once. Every aggregation keeps
 * `instance` (one PgBouncer process: pool limits are per process) and, for pool and stats series,
 * `database` (`max_db_connections` caps a database across its users).
 */
import type { PoolSettings } from "../pgbouncer";
import type { MonitoringSettings } from "./settings";
import { type Thresholds, deriveThresholds } from "./thresholds";

export interface QueryContext {
  readonly jobName: string;
  /** `rate()` window in seconds. */
  readonly rateWindowSeconds: number;
  readonly scrapeIntervalSeconds: number;
  /** `query_wait_timeout`; 0 disables it. */
  readonly queryWaitTimeoutSeconds: number;
  readonly thresholds: Thresholds;
}

export function queryContext(
  pool: Pick<PoolSettings, "maxDbConnections" | "maxClientConn" | "queryWaitTimeoutSeconds">,
  m: Pick<
    MonitoringSettings,
    "jobName" | "rateWindowSeconds" | "scrapeIntervalSeconds" | "exhaustionServerConnections"
  >,
): QueryContext {
  return {
    jobName: m.jobName,
    rateWindowSeconds: m.rateWindowSeconds,
    scrapeIntervalSeconds: m.scrapeIntervalSeconds,
    queryWaitTimeoutSeconds: pool.queryWaitTimeoutSeconds,
    thresholds: deriveThresholds(pool, m.exhaustionServerConnections),
  };
}

const BY_POOL = "by (instance, database)";

export function queries(c: QueryContext) {
  const job = `{job="${c.jobName}"}`;
  const w = `[${c.rateWindowSeconds}s]`;
  const perDb = (metric: string) => `sum ${BY_POOL} (${metric}${job})`;
  const ratePerDb = (metric: string) => `sum ${BY_POOL} (rate(${metric}${job}${w}))`;
  const t = c.thresholds;
  /** Waiting clients that reach `query_wait_timeout` are disconnected with an error. */
  const nearTimeout = Math.max(1, c.queryWaitTimeoutSeconds - 2 * c.scrapeIntervalSeconds);
  return {
    /** Server connections linked to a client, per process and database: what the server cap limits. */
    busyServerConnections: perDb("pgbouncer_pools_server_active_connections"),
    /** Busy server connections as a share (0..1) of the per-process cap. */
    serverUtilization: `${perDb("pgbouncer_pools_server_active_connections")} / ${t.serverCap}`,
    /** Client connections as a share of the live `max_client_conn` (matched on instance). */
    clientUtilization:
      `sum by (instance) (pgbouncer_client_connections${job})` +
      ` / on (instance) pgbouncer_config_max_client_connections${job}`,
    activeClients: perDb("pgbouncer_pools_client_active_connections"),
    waitingClients: perDb("pgbouncer_pools_client_waiting_connections"),
    idleServerConnections: perDb("pgbouncer_pools_server_idle_connections"),
    usedServerConnections: perDb("pgbouncer_pools_server_used_connections"),
    totalClients: `sum by (instance) (pgbouncer_client_connections${job})`,
    databaseCurrentConnections: `max by (instance, name) (pgbouncer_databases_current_connections{job="${c.jobName}", name!="pgbouncer"})`,
    databasePoolSize: `max by (instance, name) (pgbouncer_databases_pool_size{job="${c.jobName}", name!="pgbouncer"})`,
    databaseMaxConnections: `max by (instance, name) (pgbouncer_databases_max_connections{job="${c.jobName}", name!="pgbouncer"})`,
    queryRate: ratePerDb("pgbouncer_stats_totals_queries_pooled_total"),
    transactionRate: ratePerDb("pgbouncer_stats_totals_sql_transactions_pooled_total"),
    averageQueryDurationSeconds:
      `${ratePerDb("pgbouncer_stats_totals_queries_duration_seconds_total")}` +
      ` / ${ratePerDb("pgbouncer_stats_totals_queries_pooled_total")}`,
    /**
     * Average wait for a server connection per transaction. PgBouncer adds a client's wait to the total when
     * it assigns a server; in transaction mode that is once per transaction. `client_maxwait_seconds` is
     * whole seconds only and cannot see 50 ms. When waits accrue while no transaction completes, this is
     * +Inf, which rightly counts as too long.
     */
    averageWaitSeconds:
      `${ratePerDb("pgbouncer_stats_totals_client_wait_seconds_total")}` +
      ` / ${ratePerDb("pgbouncer_stats_totals_sql_transactions_pooled_total")}`,
    maxWaitSeconds: `max ${BY_POOL} (pgbouncer_pools_client_maxwait_seconds${job})`,
    /**
     * Errors proxy (a), errors per second: clients about to be disconnected by `query_wait_timeout`. Once
     * the oldest waiter is within two scrapes of the timeout, waiters time out at about waiting / timeout
     * per second (Little's law); 0 while no waiter is near it. With the timeout off (0) nobody times out.
     */
    timeoutErrorsPerSecond:
      c.queryWaitTimeoutSeconds > 0
        ? `${perDb("pgbouncer_pools_client_waiting_connections")} / ${c.queryWaitTimeoutSeconds}` +
          ` * on (instance, database) ` +
          `(max ${BY_POOL} (pgbouncer_pools_client_maxwait_seconds${job}) >= bool ${nearTimeout})`
        : `${perDb("pgbouncer_pools_client_waiting_connections")} * 0`,
    /**
     * Errors proxy (b), per second: cancel requests in flight, averaged over the window. While a cancel
     * takes under a second this is a lower bound of cancels per second (in flight = rate x duration).
     */
    cancelsPerSecond:
      `sum ${BY_POOL} (avg_over_time(pgbouncer_pools_client_active_cancel_connections${job}${w}))` +
      ` + sum ${BY_POOL} (avg_over_time(pgbouncer_pools_client_waiting_cancel_connections${job}${w}))`,
    /** The scrape of PgBouncer failed, or the exporter itself cannot be scraped, or no target exists. */
    down: `pgbouncer_up${job} == 0 or up${job} == 0 or absent(up${job})`,
  };
}

export type Queries = ReturnType<typeof queries>;
