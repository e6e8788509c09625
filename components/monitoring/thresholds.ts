/**
 * Alert and panel thresholds, derived from the pool settings so that they move with them: the spec's
 * "exhaustion at 48" is 96% of a 50-connection server cap, not the number 48.
 */
import type { PoolSettings } from "../pgbouncer";

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
  /** Where the exhaustion threshold comes from, in words, e.g. `96% of max_db_connections 50`. */
  readonly exhaustionBasis: string;
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

/**
 * The exhaustion threshold a pool gets when its stack sets none: 96% of the cap rounded up, but at most one
 * below the cap, so the alert fires while a server connection is still free (a cap of 20 gives 19, not
 * 20). Undefined for a cap of 1: no whole number of busy connections lies below it, so such a stack must
 * set `monitoring.exhaustionServerConnections` (to 1, alerting when the one connection is busy).
 */
export function derivedExhaustion(serverCap: number): number | undefined {
  if (serverCap < 2) return undefined;
  // integer arithmetic: 50 * 96 / 100 is exactly 48, where 50 * 0.96 is 48.00000000000001
  return Math.min(Math.ceil((serverCap * ALERT_POLICY.exhaustionPercent) / 100), serverCap - 1);
}

/**
 * The exhaustion thresholds a stack may set explicitly: 1 to one below the cap; a cap of 1 allows only 1
 * (its only signal is the pool being full).
 */
export function exhaustionRange(serverCap: number): { min: number; max: number } {
  return { min: 1, max: Math.max(1, serverCap - 1) };
}

/**
 * Thresholds for one pool. `exhaustionServerConnections` is the stack's explicit threshold
 * (`monitoring.exhaustionServerConnections`), already validated against `exhaustionRange`.
 * Throws for a cap of 1 without one (the settings validation refuses that stack first).
 */
export function deriveThresholds(
  pool: Pick<PoolSettings, "maxDbConnections" | "maxClientConn">,
  exhaustionServerConnections?: number,
): Thresholds {
  const p = ALERT_POLICY;
  const cap = pool.maxDbConnections;
  const derived = derivedExhaustion(cap);
  const exhaustion = exhaustionServerConnections ?? derived;
  if (exhaustion === undefined) {
    throw new Error(
      `a server cap of ${cap} leaves no busy count below it to alert at: set monitoring.exhaustionServerConnections`,
    );
  }
  let basis: string;
  if (exhaustionServerConnections !== undefined) basis = `set by the stack; max_db_connections ${cap}`;
  else if (exhaustion === Math.ceil((cap * p.exhaustionPercent) / 100)) {
    basis = `${p.exhaustionPercent}% of max_db_connections ${cap}`;
  } else basis = `one below max_db_connections ${cap}`;
  return {
    serverCap: cap,
    exhaustionServerConnections: exhaustion,
    exhaustionBasis: basis,
    utilizationServerConnections: (cap * p.utilizationPercent) / 100,
    utilizationRatio: p.utilizationPercent / 100,
    maxClientConn: pool.maxClientConn,
    utilizationClientConnections: (pool.maxClientConn * p.utilizationPercent) / 100,
    averageWaitSeconds: p.averageWaitSeconds,
    waitingClients: p.waitingClients,
    errorsPerSecond: p.errorsPerSecond,
  };
}
