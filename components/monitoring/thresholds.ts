/**
 * Alert and panel thresholds, derived from the pool settings so that they move with them: the spec's
 * "exhaustion at 48" is 96% of a 50-connection server cap, not the number 48.
 */
import type { PoolSettings } from "../pgbouncer/settings";

/** The spec's ratios and limits that are not pool sizes. */
export const ALERT_POLICY = {
  /** Exhaustion: busy server connections at or above this share of the per-process cap (48 of 50). */
  exhaustionPercent: 96,
  /** Utilization: busy server connections (or client slots) above this share. */
  utilizationPercent: 80,
  /** Average time a client waits for a server connection, per transaction. */
  averageWaitSeconds: 0.05,
  /** Clients queued for a server connection. */
  waitingClients: 10,
  /** Errors per second, through the proxy described on `PgBouncerHighErrors`. */
  errorsPerSecond: 1,
} as const;

export interface Thresholds {
  /** `max_db_connections`, the per-process server cap. */
  readonly serverCap: number;
  /** Busy server connections per process and database at which the pool counts as exhausted. */
  readonly exhaustionServerConnections: number;
  /** Busy server connections above which the pool counts as highly utilized. */
  readonly utilizationServerConnections: number;
  /** Utilization as a ratio (0..1), for expressions that divide. */
  readonly utilizationRatio: number;
  /** `max_client_conn`, client slots per process. */
  readonly maxClientConn: number;
  /** Client connections above which client slots count as highly utilized. */
  readonly utilizationClientConnections: number;
  readonly averageWaitSeconds: number;
  readonly waitingClients: number;
  readonly errorsPerSecond: number;
}

/** Thresholds for one pool. Connection counts are whole numbers: exhaustion rounds up (never below 1). */
export function deriveThresholds(pool: Pick<PoolSettings, "maxDbConnections" | "maxClientConn">): Thresholds {
  const p = ALERT_POLICY;
  // integer arithmetic: 50 * 96 / 100 is exactly 48, where 50 * 0.96 is 48.00000000000001
  const exhaustion = Math.max(1, Math.ceil((pool.maxDbConnections * p.exhaustionPercent) / 100));
  return {
    serverCap: pool.maxDbConnections,
    exhaustionServerConnections: exhaustion,
    utilizationServerConnections: (pool.maxDbConnections * p.utilizationPercent) / 100,
    utilizationRatio: p.utilizationPercent / 100,
    maxClientConn: pool.maxClientConn,
    utilizationClientConnections: (pool.maxClientConn * p.utilizationPercent) / 100,
    averageWaitSeconds: p.averageWaitSeconds,
    waitingClients: p.waitingClients,
    errorsPerSecond: p.errorsPerSecond,
  };
}
