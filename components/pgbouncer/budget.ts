/**
 * PostgreSQL connection budget. PgBouncer's limits are per process: `max_db_connections` caps one process's
 * server connections to the database, so PostgreSQL sees that cap times the processes in every pod, times
 * the pods. The StatefulSet replaces a pod only after the old one has gone (no surge), so the peak is the
 * steady state; a workload that surges adds its surge pods. While a process validates new files, its
 * server-login check (./pgbouncer-pod.sh) holds one more connection per login it checks, for a moment.
 */
import { type CredentialSettings, serverLoginChecks } from "../credentials";
import type { PoolerSettings } from "./settings";

export interface PoolBudgetInput {
  /** Pods the StatefulSet keeps. */
  readonly replicas: number;
  /** Extra pods a rolling update may start beside the replicas (a Deployment's maxSurge; a StatefulSet's 0). */
  readonly surge: number;
  /** PgBouncer processes per pod. */
  readonly processesPerPod: number;
  /** Server connections one process may open to the database (`max_db_connections`). */
  readonly serverCapPerProcess: number;
  /** Connections a process's server-login check opens beside them (`serverLoginChecks`). */
  readonly checkLoginsPerProcess: number;
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
  const perPod = b.processesPerPod * (b.serverCapPerProcess + b.checkLoginsPerProcess);
  const pods = b.replicas + b.surge;
  const peak = pods * perPod;
  const available = b.postgresMaxConnections - b.postgresReservedConnections;
  const podsText = b.surge > 0 ? `(${b.replicas} replicas + ${b.surge} surge pod)` : `${b.replicas} replicas`;
  const perProcess =
    b.checkLoginsPerProcess > 0
      ? `(${b.serverCapPerProcess} server connections + ${b.checkLoginsPerProcess} of the server-login check)`
      : `${b.serverCapPerProcess} server connections`;
  const arithmetic =
    `${podsText} x ${b.processesPerPod} process(es) per pod x ${perProcess} per process = ${peak}; ` +
    `PostgreSQL allows ` +
    `${b.postgresMaxConnections} max_connections - ${b.postgresReservedConnections} reserved = ${available}`;
  return { perPod, peak, available, fits: peak <= available, arithmetic };
}

/**
 * Pods a rolling update runs beside the replicas: none. The StatefulSet starts a pod's replacement only once
 * the pod has gone (its identity, `pgbouncer-<ordinal>` and its peer_ids, is never held twice).
 */
export const ROLLING_SURGE = 0;

/** The pool budget of a stack's settings: its replicas, processes, server cap, logins and PostgreSQL. */
export function settingsPoolBudget(
  s: Pick<PoolerSettings, "workload" | "pool" | "database"> & { readonly credentials: CredentialSettings },
): PoolBudget {
  return poolBudget({
    replicas: s.workload.replicas,
    surge: ROLLING_SURGE,
    processesPerPod: s.workload.processesPerPod,
    serverCapPerProcess: s.pool.maxDbConnections,
    checkLoginsPerProcess: serverLoginChecks(s.credentials),
    postgresMaxConnections: s.database.maxConnections,
    postgresReservedConnections: s.database.reservedConnections,
  });
}

/** Above this many steady-state server connections per PostgreSQL core, a stack gets a warning. */
export const SERVER_CONNECTIONS_PER_CORE_WARNING = 10;

/**
 * The sizing rule of docs/tuning.md as a warning: with CPU-bound transactions, server connections beyond a
 * few per PostgreSQL core add contention, not throughput (measured here: 2.5 to 5 per core did best, 25 per
 * core lost). Steady state only: the surge pod replaces one that is leaving. Undefined when there is
 * nothing to say or `database.cpuCores` is unset.
 */
export function poolSizingWarning(
  s: Pick<PoolerSettings, "workload" | "pool" | "database">,
  keys: { pool: string; database: string },
): string | undefined {
  const cores = s.database.cpuCores;
  if (cores === undefined) return undefined;
  const total = s.workload.replicas * s.workload.processesPerPod * s.pool.maxDbConnections;
  if (total <= SERVER_CONNECTIONS_PER_CORE_WARNING * cores) return undefined;
  return (
    `${keys.pool}.maxDbConnections: ${s.workload.replicas} replicas x ${s.workload.processesPerPod} ` +
    `process(es) x ${s.pool.maxDbConnections} = ${total} server connections in steady state for ` +
    `${cores} PostgreSQL cores (${keys.database}.cpuCores), ${(total / cores).toFixed(1)} per core; above ` +
    `${SERVER_CONNECTIONS_PER_CORE_WARNING} per core they add contention, not throughput, on CPU-bound work ` +
    `(docs/tuning.md)`
  );
}
