/**
 * PostgreSQL connection budget. PgBouncer's limits are per process: `max_db_connections` caps one process's
 * server connections to the database, so PostgreSQL sees that cap times the processes in every pod, times
 * the pods, and one more pod during a rolling update (maxSurge 1, maxUnavailable 0).
 */

export interface PoolBudgetInput {
  /** Pods the Deployment keeps. */
  readonly replicas: number;
  /** Extra pods a rolling update may start (the Deployment's maxSurge). */
  readonly surge: number;
  /** PgBouncer processes per pod. */
  readonly processesPerPod: number;
  /** Server connections one process may open to the database (`max_db_connections`). */
  readonly serverCapPerProcess: number;
  /** PostgreSQL's `max_connections`. */
  readonly postgresMaxConnections: number;
  /**
   * Connections kept for everyone but PgBouncer: `superuser_reserved_connections`, migrations, backups,
   * the operators' psql.
   */
  readonly postgresReservedConnections: number;
}

export interface PoolBudget {
  readonly perPod: number;
  /** Most server connections PgBouncer can hold at once, during a rolling update. */
  readonly peak: number;
  /** What PostgreSQL leaves for PgBouncer. */
  readonly available: number;
  readonly fits: boolean;
  /** The sum in words, for errors and docs. */
  readonly arithmetic: string;
}

export function poolBudget(b: PoolBudgetInput): PoolBudget {
  const perPod = b.processesPerPod * b.serverCapPerProcess;
  const pods = b.replicas + b.surge;
  const peak = pods * perPod;
  const available = b.postgresMaxConnections - b.postgresReservedConnections;
  const arithmetic =
    `(${b.replicas} replicas + ${b.surge} surge pod) x ${b.processesPerPod} process(es) per pod x ` +
    `${b.serverCapPerProcess} server connections per process = ${peak}; PostgreSQL allows ` +
    `${b.postgresMaxConnections} max_connections - ${b.postgresReservedConnections} reserved = ${available}`;
  return { perPod, peak, available, fits: peak <= available, arithmetic };
}
