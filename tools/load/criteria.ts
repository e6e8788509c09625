/**
 * The spec's pass/fail criteria for a load run, with every limit derived from the stack's pool settings
 * through the same thresholds the alerts use (`deriveThresholds`): busy server connections per process
 * below the exhaustion level (96% of `max_db_connections`, at most one below it), fewer than 10 waiting clients, the pool back
 * to its baseline afterwards, zero connection errors, and pgbench's own exit code.
 *
 * A cold pod (no server connection yet: `min_pool_size` does not pre-warm a pool without clients, and nothing
 * logs in before the Service sends the first clients) grows its pool one server login at a time (PgBouncer
 * 1.25.2, src/objects.c, launch_new_connection). So a burst at a cold pod queues its clients while the pool
 * grows: the criterion for that phase is that the pool grows (to its size for a burst bigger than it; until no
 * client waits for a burst it can hold) and, for a burst it can hold, that no client waits longer than the
 * server logins in series that its process must make ({@link coldStartBoundMs}), each as long as a login to
 * PostgreSQL takes meanwhile: timed from the validator during the burst, or PgBouncer's own pace as the
 * samples show the pool grow ({@link loginPaceMs}), whichever is longer. The waiting-clients limit applies once
 * the pool has grown. (Clients beyond the pool wait for other clients' transactions, not for logins: the
 * waiting limit judges those.)
 */
import { deriveThresholds } from "../../components/monitoring";
import type { PoolSettings } from "../../components/pgbouncer";
import type { PgbenchResult } from "./pgbench";
import type { PoolSample, ProcessSample } from "./sampler";

export interface Criteria {
  /** `max_db_connections`, per process. */
  readonly serverCap: number;
  /** Busy (`sv_active`) server connections of one process must stay below this. */
  readonly activeBelow: number;
  /** Waiting clients (`cl_waiting`, summed over processes) must stay below this. */
  readonly waitingBelow: number;
}

/** `exhaustionServerConnections` is the stack's `monitoring.exhaustionServerConnections`, when it sets one. */
export function criteriaFor(
  pool: Pick<PoolSettings, "maxDbConnections" | "maxClientConn">,
  exhaustionServerConnections?: number,
): Criteria {
  const t = deriveThresholds(pool, exhaustionServerConnections);
  return {
    serverCap: t.serverCap,
    activeBelow: t.exhaustionServerConnections,
    waitingBelow: t.waitingClients,
  };
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What a cold start is judged by. */
export interface ColdStart {
  /** Clients of the burst. */
  readonly clients: number;
  /** PgBouncer processes they spread over. */
  readonly processes: number;
  /** `default_pool_size`: the most servers one process opens for the pool. */
  readonly poolSize: number;
  /** One server login's time (a TLS + SCRAM login to PostgreSQL), measured during the burst. */
  readonly serverLoginMs: number;
}

/**
 * The servers one process opens for the burst, and the longest a client may wait for them: the last of them
 * waits for every login in series.
 */
export function coldStartBoundMs(c: ColdStart): { logins: number; boundMs: number } {
  const logins = Math.min(Math.ceil(c.clients / c.processes), c.poolSize);
  return { logins, boundMs: logins * c.serverLoginMs };
}

export interface RunObservations {
  /** Before the load. */
  readonly baseline: PoolSample;
  /** During the load. */
  readonly samples: readonly PoolSample[];
  /** The last sample of the settle phase after the load. */
  readonly after: PoolSample;
  /** Whether `after` met the baseline condition within the settle time. */
  readonly settled: boolean;
  readonly settleMs: number;
  readonly pgbench: PgbenchResult;
  /** Sampling errors (a console connection that broke twice in a row). */
  readonly samplingErrors: readonly string[];
  /** Set when the run started on a cold pool (no warm-up): its first phase is judged by this. */
  readonly coldStart?: ColdStart;
}

export interface Verdict {
  readonly pass: boolean;
  readonly checks: readonly Check[];
  readonly peakActivePerProcess: number;
  readonly peakWaiting: number;
}

/** After the load: nobody waits, no server is busy, no more clients than before. */
export function atBaseline(baseline: ProcessSample, now: ProcessSample): boolean {
  return now.clWaiting === 0 && now.svActive <= baseline.svActive && now.clActive <= baseline.clActive;
}

/** Servers a sample's processes hold for the pool: busy, idle or used. */
function servers(s: PoolSample): number {
  return s.total.svActive + s.total.svIdle + s.total.svUsed;
}

/**
 * PgBouncer's own pace of server logins while the pool grew: the time from the first sample with a server to
 * the grown one, over the logins each process made in between (one at a time). Undefined when no two samples
 * span the growth.
 */
export function loginPaceMs(
  processes: number,
  samples: readonly PoolSample[],
  grownAt: number,
): number | undefined {
  const first = samples.findIndex((s) => servers(s) > 0);
  if (grownAt < 0 || first < 0 || first >= grownAt) return undefined;
  const logins = (servers(samples[grownAt]) - servers(samples[first])) / processes;
  return logins > 0 ? (samples[grownAt].t - samples[first].t) / logins : undefined;
}

/** The waiting-clients check of a cold start, and the samples after it (the pool grown). */
function coldStartCheck(
  cold: ColdStart,
  samples: readonly PoolSample[],
): { check: Check; warm: PoolSample[] } {
  const full = Math.min(cold.clients, cold.processes * cold.poolSize);
  // a burst the pool holds: every client waits only for logins
  const fits = cold.clients <= cold.processes * cold.poolSize;
  // Grown: the pool holds the whole burst's servers or, for a burst it holds, every client of the burst is
  // logged in, none waits for a server, and the pool holds as many as it ever does in the run. Clients that
  // are never all in a transaction at once (a client between two transactions needs no server) leave the
  // pool short of `full` with nobody waiting: PgBouncer opens a server only for a client that waits for one.
  // A sample with nobody waiting while the pool still grows is no grown pool: on busy cores one came between
  // two server logins, and the clients that then waited for the next ones were judged as if warm.
  const arrived = (s: PoolSample) => s.total.clActive + s.total.clWaiting >= cold.clients;
  const peak = Math.max(0, ...samples.map(servers));
  const grownAt = samples.findIndex(
    (s) =>
      servers(s) >= full ||
      (fits && arrived(s) && servers(s) > 0 && servers(s) >= peak && s.total.clWaiting === 0),
  );
  // A login takes as long as the longer of the one timed from the validator and PgBouncer's own pace: the
  // validator's waits on neither PgBouncer's one thread, which serves the clients between its logins, nor its
  // SCRAM key derivation (its own SHA-256: 4.4 ms of CPU a login, against 0.57 ms in Node).
  const pace = loginPaceMs(cold.processes, samples, grownAt);
  const loginMs = Math.max(cold.serverLoginMs, pace ?? 0);
  const { logins, boundMs } = coldStartBoundMs({ ...cold, serverLoginMs: loginMs });
  const coldPhase = grownAt < 0 ? samples : samples.slice(0, grownAt + 1);
  const longest = Math.max(0, ...coldPhase.map((s) => s.total.maxWaitMs));
  return {
    check: {
      name: fits
        ? `cold start: the pool grows until no client waits, and no client waits longer than ${logins} server ` +
          `logins in series (${logins} x ${loginMs.toFixed(0)} ms = ${boundMs.toFixed(0)} ms)`
        : `cold start: the pool grows to ${full} servers (its size; the burst's other clients wait for transactions)`,
      ok: grownAt >= 0 && (!fits || longest < boundMs),
      detail:
        grownAt < 0
          ? fits
            ? `clients still waited for servers at the last sample (peak ${peak} servers)`
            : `the pool never held ${full} servers (peak ${peak})`
          : `grown to ${servers(samples[grownAt])} servers at ${(samples[grownAt].t - samples[0].t).toFixed(0)} ms ` +
            `after the first sample; longest sampled wait ${longest.toFixed(0)} ms, peak cl_waiting ` +
            `${Math.max(0, ...coldPhase.map((s) => s.total.clWaiting))}; a login ` +
            `${cold.serverLoginMs.toFixed(0)} ms timed from here, ` +
            `${pace === undefined ? "PgBouncer's pace not sampled" : `PgBouncer's pace ${pace.toFixed(0)} ms`}`,
    },
    warm: grownAt < 0 ? [] : samples.slice(grownAt + 1),
  };
}

export function evaluate(c: Criteria, o: RunObservations): Verdict {
  const peakActivePerProcess = Math.max(0, ...o.samples.flatMap((s) => s.processes.map((p) => p.svActive)));
  const cold = o.coldStart ? coldStartCheck(o.coldStart, o.samples) : undefined;
  const judged = cold ? cold.warm : o.samples;
  const peakWaiting = Math.max(0, ...judged.map((s) => s.total.clWaiting));
  const pg = o.pgbench;
  const checks: Check[] = [
    {
      name: "samples taken during the load",
      ok: o.samples.length > 0,
      detail: `${o.samples.length} samples of SHOW POOLS / SHOW STATS`,
    },
    {
      name: `busy server connections per process < ${c.activeBelow} (96% of max_db_connections ${c.serverCap})`,
      ok: peakActivePerProcess < c.activeBelow,
      detail: `peak sv_active ${peakActivePerProcess}`,
    },
    ...(cold ? [cold.check] : []),
    {
      name: `waiting clients < ${c.waitingBelow}${cold ? " once the pool has grown" : ""}`,
      ok: peakWaiting < c.waitingBelow,
      detail: `peak cl_waiting ${peakWaiting}, longest wait ${Math.max(0, ...judged.map((s) => s.total.maxWaitMs)).toFixed(0)} ms`,
    },
    {
      name: "pool back to baseline after the load",
      ok: o.settled,
      detail:
        `${o.settled ? "after" : "not within"} ${(o.settleMs / 1000).toFixed(1)} s: cl_active ${o.after.total.clActive} ` +
        `(before ${o.baseline.total.clActive}), cl_waiting ${o.after.total.clWaiting}, sv_active ` +
        `${o.after.total.svActive}; ${o.after.total.svIdle + o.after.total.svUsed} idle server connections stay ` +
        `open until server_idle_timeout`,
    },
    {
      name: "zero connection errors",
      ok: pg.connectionErrors === 0 && pg.abortedClients === 0 && o.samplingErrors.length === 0,
      detail:
        `${pg.connectionErrors} connection error lines, ${pg.abortedClients} aborted clients, ` +
        `${o.samplingErrors.length} sampling errors` +
        (pg.errors.length
          ? `; first: ${pg.errors[0]}`
          : o.samplingErrors.length
            ? `; first: ${o.samplingErrors[0]}`
            : ""),
    },
    {
      name: "pgbench exit code 0, no failed transactions",
      ok: pg.exitCode === 0 && pg.failed === 0 && pg.transactions > 0,
      detail: `exit ${pg.exitCode}, ${pg.transactions} transactions, ${pg.failed} failed`,
    },
  ];
  return { pass: checks.every((k) => k.ok), checks, peakActivePerProcess, peakWaiting };
}
