/**
 * npm run fault -- --stack prod [--faults LIST --workers 20 --seconds S --at 5 --set section.field=value ...]
 *
 * A fault under load on the local fleet (tools/fleet/: the stack's replicas, each process run by the pod's own
 * script with the stack's own timings, behind a balancer that picks a ready replica per connection, as
 * kube-proxy does), in the order production meets it, and every error a client sees, sorted by its cause:
 * - `postgres-fast`, `postgres-immediate`: the fleet's PostgreSQL restarted (fast: SIGINT, open transactions
 *   rolled back; immediate: SIGQUIT, a crash and recovery);
 * - `pod-replacement`: pgbouncer-0 replaced as a rolling update or an eviction replaces it: it leaves the
 *   Service's endpoints (the balancer), the preStop hook sleeps `preStopDelaySeconds`, INT to every container's
 *   script (the drain: SHUTDOWN WAIT_FOR_CLIENTS for `drainSeconds`, then PAUSE and QUIT), the pod starts again.
 * The load is `workers` reconnecting clients of the minimal wire client (pgbench cannot: a pgbench client
 * whose connection drops is aborted for good), each holding its connection and running transactions back to
 * back, as a backend's connection pool does; `--max-lifetime` makes them retire a connection once it is that
 * old, as a pool's max lifetime does.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { exitOnSignals } from "../harness";
import { PgClient } from "../harness/pgwire";
import type { Conn } from "../harness/postgres";
import { type Fleet, fleetSettings, stackTimings, startFleet } from "../fleet/fleet";
import { initPgbench } from "./pgbench";
import { listStacks } from "../../stacks/stack-file";
import { Args, UsageError, runMain } from "../common";

export type Fault = "postgres-fast" | "postgres-immediate" | "pod-replacement";
export const FAULTS: readonly Fault[] = ["postgres-fast", "postgres-immediate", "pod-replacement"];

const FAULT_TEXT: Record<Fault, string> = {
  "postgres-fast": "PostgreSQL restart, fast shutdown (SIGINT: rolls back open transactions, disconnects)",
  "postgres-immediate": "PostgreSQL restart, immediate shutdown (SIGQUIT: a crash; recovery on start)",
  "pod-replacement":
    "pgbouncer-0 replaced (out of the endpoints, preStop sleep, INT: the drain, then the pod starts again)",
};

/** One transaction attempt (or connection attempt) of one worker; times in ms from the run's start. */
export interface Attempt {
  readonly worker: number;
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
  /** "connect" when logging in failed, "transaction" when the transaction did. */
  readonly stage?: "connect" | "transaction";
  readonly error?: string;
  /** The server side closed the connection (a failed attempt's connection is unusable afterwards). */
  readonly closed?: boolean;
  /** The replica the balancer handed the connection to, when known. */
  readonly replica?: number;
}

/** A replaced pod's drain, in ms from the run's start. */
export interface DrainTimes {
  readonly replica: number;
  /** INT to the pod's scripts (the preStop hook's end): SHUTDOWN WAIT_FOR_CLIENTS. */
  readonly signalledAt: number;
  /**
   * From when the drain may close its clients: `drainSeconds` after the INT, less the 1 s the script's
   * whole-second clock (`date +%s`) may put it early; it pauses PgBouncer, then stops it.
   */
  readonly closingFrom: number;
  /** Every container of the pod had exited. */
  readonly stoppedAt: number;
}

export interface FaultTimeline {
  /** When the fault began: PostgreSQL's stop, or the pod's removal from the endpoints (the balancer). */
  readonly faultAt: number;
  /**
   * When it could first touch a transaction in flight: PostgreSQL's stop, or the INT that starts the pod's
   * drain. @default faultAt
   */
  readonly hitAt?: number;
  /** When what failed was back: PostgreSQL accepting connections, or the new pod ready and in service. */
  readonly upAt: number;
  /** The replaced pod's drain. */
  readonly drain?: DrainTimes;
}

/** Every error a client saw falls in exactly one of these, tried in this order. */
export type ErrorKind =
  "in-flight" | "drain-closed" | "refused-login" | "outage" | "after-recovery" | "before-fault";
export const ERROR_KINDS: readonly ErrorKind[] = [
  "in-flight",
  "drain-closed",
  "refused-login",
  "outage",
  "after-recovery",
  "before-fault",
];
export const ERROR_KIND_TEXT: Record<ErrorKind, string> = {
  "in-flight": "transactions in flight when the fault hit (begun before, failed at or after it)",
  "drain-closed":
    "connections to the replaced pod closed at the end of its drain (begun after drainSeconds; PAUSE, then QUIT)",
  "refused-login": "logins refused or broken",
  outage: "transactions begun while it was down (PostgreSQL stopped or starting; the pod out of service)",
  "after-recovery": "transactions begun after it was back",
  "before-fault": "transactions begun and failed before the fault (not its doing)",
};

/** Which kind an error is (`a` failed), by the timeline. */
export function errorKind(a: Attempt, t: FaultTimeline): ErrorKind {
  const hitAt = t.hitAt ?? t.faultAt;
  if (a.stage === "connect") return "refused-login";
  if (a.start < hitAt && a.end >= hitAt) return "in-flight";
  const d = t.drain;
  if (d && a.closed && a.replica === d.replica && a.start >= d.closingFrom) return "drain-closed";
  if (a.start < t.faultAt) return "before-fault";
  return a.start < t.upAt ? "outage" : "after-recovery";
}

export interface ErrorGroup {
  /** The message with its numbers folded (`#`), so that equal errors group together. */
  readonly message: string;
  readonly count: number;
}

export interface FaultAnalysis {
  readonly transactions: number;
  /** Every failed attempt: each error a client saw, a refused login included. */
  readonly failures: number;
  /** Every failure by its kind, with its messages (most frequent first); every kind is present. */
  readonly byKind: Readonly<
    Record<ErrorKind, { readonly count: number; readonly errors: readonly ErrorGroup[] }>
  >;
  /** From the server being up again to the end of the first successful transaction that started after that, ms. */
  readonly firstSuccessAfterUpMs: number | undefined;
  /**
   * From the fault to the moment after which every attempt succeeded (the start of the first attempt after
   * the last failure), ms; undefined when failures went on to the end of the run.
   */
  readonly recoveredMs: number | undefined;
  /** From the fault to the end of the last failed attempt, ms. */
  readonly lastFailureMs: number | undefined;
  /** Longest time a transaction that succeeded took (it may have waited in PgBouncer's queue), ms. */
  readonly longestSuccessMs: number;
  /** The run ended before what failed was back (no attempt began after `upAt`). */
  readonly endedBeforeUp: boolean;
  /**
   * With a drain: the clients whose connection was on the replaced pod when it left the endpoints (their last
   * attempt before the fault succeeded there). Clients that keep their connections each meet the drain's end.
   */
  readonly onReplacedAtFault?: number;
}

function groups(failed: readonly Attempt[]): ErrorGroup[] {
  const counts = new Map<string, number>();
  for (const f of failed) {
    const key = `${f.stage}: ${(f.error ?? "").replace(/\d+/g, "#")}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()]
    .map(([message, count]) => ({ message, count }))
    .sort((a, b) => b.count - a.count);
}

/** Sorts every failed attempt of a run by its kind; no error is left out. */
export function analyse(attempts: readonly Attempt[], t: FaultTimeline): FaultAnalysis {
  const failed = attempts.filter((a) => !a.ok);
  const byKind = Object.fromEntries(
    ERROR_KINDS.map((k) => {
      const mine = failed.filter((f) => errorKind(f, t) === k);
      return [k, { count: mine.length, errors: groups(mine) }];
    }),
  ) as Record<ErrorKind, { count: number; errors: ErrorGroup[] }>;
  const afterUp = attempts.filter((a) => a.ok && a.start >= t.upAt).sort((a, b) => a.end - b.end);
  const firstOk = afterUp[0];
  const lastFail = failed.reduce((m, f) => Math.max(m, f.end), -Infinity);
  const lastFailStart = failed.reduce((m, f) => Math.max(m, f.start), -Infinity);
  const lastAttemptStart = attempts.reduce((m, f) => Math.max(m, f.start), -Infinity);
  const recovery = attempts
    .filter((a) => a.start > lastFailStart && a.ok)
    .reduce((m, a) => Math.min(m, a.start), Infinity);
  return {
    transactions: attempts.filter((a) => a.ok).length,
    failures: failed.length,
    byKind,
    firstSuccessAfterUpMs: firstOk ? firstOk.end - t.upAt : undefined,
    recoveredMs: !failed.length
      ? 0
      : Number.isFinite(recovery) && lastFailStart < lastAttemptStart
        ? Math.max(0, recovery - t.faultAt)
        : undefined,
    lastFailureMs: failed.length ? lastFail - t.faultAt : undefined,
    longestSuccessMs: Math.max(0, ...attempts.filter((a) => a.ok).map((a) => a.end - a.start)),
    endedBeforeUp: lastAttemptStart < t.upAt,
    ...(t.drain ? { onReplacedAtFault: connectedAt(attempts, t.faultAt, t.drain.replica) } : {}),
  };
}

/** Workers whose last attempt begun before `at` succeeded on `replica`. */
function connectedAt(attempts: readonly Attempt[], at: number, replica: number): number {
  const last = new Map<number, Attempt>();
  for (const a of attempts) {
    const seen = last.get(a.worker);
    if (a.start < at && (!seen || a.start > seen.start)) last.set(a.worker, a);
  }
  return [...last.values()].filter((a) => a.ok && a.replica === replica).length;
}

/**
 * An application-like transaction: one row of `pgbench_accounts` updated, 1-10 ms of work while holding it;
 * with no accounts, the work alone.
 */
function transactionSql(accounts: number): string {
  const ms = 1 + Math.floor(Math.random() * 10);
  if (accounts === 0) return `BEGIN; SELECT pg_sleep(${ms / 1000}); COMMIT;`;
  const aid = 1 + Math.floor(Math.random() * accounts);
  return (
    `BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = ${aid}; ` +
    `SELECT pg_sleep(${ms / 1000}); COMMIT;`
  );
}

export interface WorkerOptions {
  readonly workers: number;
  /** Date.now() when the workers stop (each after its attempt). */
  readonly endAt: number;
  /** Date.now() of the run's start: attempts' times count from it. */
  readonly t0: number;
  /** Rows of `pgbench_accounts`; 0: transactions that need no table. */
  readonly accounts: number;
  /** A connection older than this is closed between transactions and replaced (a pool's max lifetime). */
  readonly maxLifetimeMs?: number;
  /** Which replica the balancer handed a connection to, by the client's own port. */
  readonly replicaOf?: (clientPort: number) => number | undefined;
  /**
   * After each transaction, failed or not, the worker waits this long (a backend's time between requests,
   * its connection idle meanwhile), cut short at `endAt`. @default 0: back to back
   */
  readonly pauseMs?: number;
}

/**
 * Workers that each run transactions back to back (or `pauseMs` apart), reconnecting after any failure, until
 * `endAt`.
 */
export async function runWorkers(conn: Conn, o: WorkerOptions): Promise<Attempt[]> {
  const attempts: Attempt[] = [];
  const now = () => Date.now() - o.t0;
  const worker = async (w: number) => {
    let client: PgClient | undefined;
    let replica: number | undefined;
    let since = 0;
    while (Date.now() < o.endAt) {
      if (client && o.maxLifetimeMs !== undefined && Date.now() - since >= o.maxLifetimeMs) {
        client.close();
        client = undefined;
      }
      const start = now();
      if (!client || client.closed) {
        try {
          client = await PgClient.connect(conn, { timeoutMs: 5000, applicationName: `fault-${w}` });
          since = Date.now();
          const port = client.localPort;
          replica = port !== undefined ? o.replicaOf?.(port) : undefined;
        } catch (e) {
          client = undefined;
          attempts.push({
            worker: w,
            start,
            end: now(),
            ok: false,
            stage: "connect",
            error: (e as Error).message,
          });
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
      }
      const at = replica !== undefined ? { replica } : {};
      const txStart = now();
      try {
        await client.query(transactionSql(o.accounts));
        attempts.push({ worker: w, start: txStart, end: now(), ok: true, ...at });
      } catch (e) {
        attempts.push({
          worker: w,
          start: txStart,
          end: now(),
          ok: false,
          stage: "transaction",
          error: (e as Error).message,
          closed: client.closed,
          ...at,
        });
        // a transaction that failed mid-way leaves the session in an aborted transaction: start clean
        client.close();
        client = undefined;
      }
      const pauseMs = o.pauseMs ?? 0;
      const pause = Math.min(pauseMs, o.endAt - Date.now());
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
      // a pause cut short at endAt ends the worker: its timer may fire a millisecond before Date.now() reaches
      // endAt, and the loop then started one more transaction after a short pause (154 ms of 200, 2026-12-07)
      if (pause < pauseMs) break;
    }
    client?.close();
  };
  await Promise.all(Array.from({ length: o.workers }, (_, w) => worker(w)));
  return attempts;
}

export interface FaultRunOptions {
  readonly workers: number;
  readonly seconds: number;
  readonly atSeconds: number;
  /** Rows of `pgbench_accounts` (made beforehand); 0: transactions that need no table. */
  readonly accounts: number;
  /** @default none: connections are kept until they fail */
  readonly maxLifetimeSeconds?: number;
  /** Each worker's wait after a transaction ({@link WorkerOptions.pauseMs}). @default 0: back to back */
  readonly pauseMs?: number;
}

export interface FaultRun {
  readonly fault: Fault;
  readonly description: string;
  readonly timeline: FaultTimeline;
  readonly analysis: FaultAnalysis;
  readonly options: FaultRunOptions;
  /** The fleet's drain and preStop, for the report. */
  readonly preStopMs?: number;
  readonly drainSeconds: number;
  /** Connections the balancer refused (no replica ready). */
  readonly balancerRefused: number;
  readonly loadavg: readonly number[];
}

/**
 * When PostgreSQL last said `database system is ready to accept connections` after `after` (Date.now()), from
 * its log (PostgreSQL 15's default log_line_prefix `%m [%p] `: milliseconds, UTC here); undefined without one.
 */
export function readyAtFromLog(log: string, after: number): number | undefined {
  const re =
    /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (UTC|GMT) \[\d+\] LOG: {2}database system is ready to accept connections$/gm;
  let at: number | undefined;
  for (const m of log.matchAll(re)) {
    const t = Date.parse(`${m[1].replace(" ", "T")}Z`);
    if (t >= after) at = t;
  }
  return at;
}

/** The shortest run that covers a replacement: the fault, preStop, the drain and a start, then load. */
export function minimumSeconds(atSeconds: number, preStopSeconds: number, drainSeconds: number): number {
  return atSeconds + preStopSeconds + drainSeconds + 10;
}

/** One fault on a running fleet under `o.workers` clients through its balancer. */
export async function runFault(fleet: Fleet, fault: Fault, o: FaultRunOptions): Promise<FaultRun> {
  const loadavg = os.loadavg();
  const refusedBefore = fleet.balancer.refused;
  const t0 = Date.now();
  const load = runWorkers(fleet.conn, {
    workers: o.workers,
    endAt: t0 + o.seconds * 1000,
    t0,
    accounts: o.accounts,
    ...(o.maxLifetimeSeconds !== undefined ? { maxLifetimeMs: o.maxLifetimeSeconds * 1000 } : {}),
    ...(o.pauseMs !== undefined ? { pauseMs: o.pauseMs } : {}),
    replicaOf: (p) => fleet.balancer.replicaOf(p),
  });
  const faulted = (async (): Promise<{ timeline: FaultTimeline; preStopMs?: number }> => {
    await new Promise((r) => setTimeout(r, o.atSeconds * 1000));
    if (fault !== "pod-replacement") {
      const signalled = Date.now();
      await fleet.world.pg.restart({ mode: fault === "postgres-fast" ? "fast" : "immediate" });
      // PostgreSQL's own word for when it accepted again: the harness's pg_isready polls every 100 ms, and
      // on busy cores a poll takes longer
      const up = readyAtFromLog(fleet.world.pg.logs(), signalled) ?? Date.now();
      return { timeline: { faultAt: signalled - t0, upAt: up - t0 } };
    }
    const replica = 0;
    const times = await fleet.replace(replica);
    const rel = (at: number) => at - t0;
    const drainMs = fleet.timings.drainSeconds * 1000;
    return {
      preStopMs: times.signalledAt - times.leftAt,
      timeline: {
        faultAt: rel(times.leftAt),
        hitAt: rel(times.signalledAt),
        upAt: rel(times.readyAt ?? Date.now()),
        drain: {
          replica,
          signalledAt: rel(times.signalledAt),
          closingFrom: rel(times.signalledAt + Math.max(0, drainMs - 1000)),
          stoppedAt: rel(times.stoppedAt),
        },
      },
    };
  })();
  // the workers end by themselves at the run's end: wait for them whatever the fault did
  const [loaded, done] = await Promise.allSettled([load, faulted]);
  if (loaded.status === "rejected") throw loaded.reason;
  if (done.status === "rejected") throw done.reason;
  const attempts = loaded.value;
  const { timeline, preStopMs } = done.value;
  return {
    fault,
    description: FAULT_TEXT[fault],
    timeline,
    analysis: analyse(attempts, timeline),
    options: o,
    ...(preStopMs !== undefined ? { preStopMs } : {}),
    drainSeconds: fleet.timings.drainSeconds,
    balancerRefused: fleet.balancer.refused - refusedBefore,
    loadavg,
  };
}

const sec = (v: number | undefined) => (v === undefined ? "never" : `${(v / 1000).toFixed(2)} s`);

export function formatFault(r: FaultRun): string {
  const a = r.analysis;
  const t = r.timeline;
  const d = t.drain;
  const when = d
    ? `  left the endpoints at ${sec(t.faultAt)}; INT ${sec((t.hitAt ?? t.faultAt) - t.faultAt)} later (preStop); ` +
      `the drain may close clients from ${sec(d.closingFrom - d.signalledAt)} after the INT (drainSeconds ` +
      `${r.drainSeconds}); stopped ${sec(d.stoppedAt - d.signalledAt)} after the INT; ready and in service ` +
      `again ${sec(t.upAt - t.faultAt)} after leaving`
    : `  fault at ${sec(t.faultAt)}, accepting connections again ${sec(t.upAt - t.faultAt)} later`;
  const lines = [
    r.description,
    `${when}; load average ${r.loadavg.map((l) => l.toFixed(2)).join(" ")}`,
    `  ${a.transactions} transactions ok, ${a.failures} errors seen by the clients` +
      (r.balancerRefused
        ? ` (the balancer refused ${r.balancerRefused} connections: no replica ready)`
        : "") +
      (a.onReplacedAtFault !== undefined
        ? `; ${a.onReplacedAtFault} of ${r.options.workers} clients were on the replaced pod when it left`
        : ""),
  ];
  for (const k of ERROR_KINDS) {
    const g = a.byKind[k];
    lines.push(`  ${String(g.count).padStart(5)}  ${ERROR_KIND_TEXT[k]}`);
    for (const e of g.errors.slice(0, 3))
      lines.push(`         ${String(e.count).padStart(5)} x ${e.message}`);
  }
  lines.push(
    `  recovered (every attempt begun from then on succeeded) ${sec(a.recoveredMs)} after the fault; the first ` +
      `transaction begun after it was back succeeded ${sec(a.firstSuccessAfterUpMs)} after that; last ` +
      `failure ${sec(a.lastFailureMs)} after the fault; slowest successful transaction ${sec(a.longestSuccessMs)}`,
  );
  if (a.endedBeforeUp) lines.push("  the run ended before it was back: lengthen --seconds");
  return lines.join("\n");
}

/** One Markdown table of the runs, for docs/tuning.md. */
export function markdownTable(runs: readonly FaultRun[]): string {
  const head =
    "| fault | out for | in flight | closed at the drain's end | refused logins | begun while down | " +
    "begun after it was back | before the fault | transactions ok | every attempt succeeds again after |";
  const rows = runs.map((r) => {
    const k = r.analysis.byKind;
    return (
      `| ${r.fault} | ${sec(r.timeline.upAt - r.timeline.faultAt)} | ${k["in-flight"].count} | ` +
      `${k["drain-closed"].count} | ${k["refused-login"].count} | ${k.outage.count} | ` +
      `${k["after-recovery"].count} | ${k["before-fault"].count} | ${r.analysis.transactions} | ` +
      `${sec(r.analysis.recoveredMs)} |`
    );
  });
  return [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", ...rows].join("\n");
}

const USAGE = `usage: npm run fault -- --stack <${listStacks().join("|")}> [options]

  --faults LIST        comma-separated, from ${FAULTS.join(", ")} (default: all)
  --workers N          reconnecting clients through the fleet's balancer (default 20)
  --seconds S          length of each run (default: --at + the stack's preStopDelaySeconds + drainSeconds
                       + 10, the least that covers a replacement; shorter is refused for pod-replacement)
  --at S               when the fault hits (default 5)
  --max-lifetime S     each client retires a connection once it is S seconds old, between transactions, as a
                       pool's max lifetime does (default: connections are kept until they fail)
  --set K=V            a stack setting, as npm run fleet takes it (e.g. pgbouncer.drainSeconds=5); the
                       replicas, processes, preStop and drain are the stack's unless set
  --json FILE          also write the runs as JSON`;

if (require.main === module) {
  runMain(USAGE, async () => {
    const a = new Args(process.argv.slice(2));
    const stackName = a.string("stack");
    if (!listStacks().includes(stackName)) {
      throw new UsageError(`--stack is "${stackName}"; the stacks are ${listStacks().join(", ")}`);
    }
    const faults = a.string("faults", FAULTS.join(",")).split(",") as Fault[];
    const workers = a.int("workers", 20, 1, 1000);
    const secondsText = a.optional("seconds");
    const atSeconds = a.int("at", 5, 1, 3600);
    const lifetimeText = a.optional("max-lifetime");
    const sets = Object.fromEntries(
      a.all("set").map((s) => {
        if (!/^[A-Za-z][\w.]*=/.test(s)) throw new UsageError(`--set "${s}" is not section.field=value`);
        return [s.slice(0, s.indexOf("=")), s.slice(s.indexOf("=") + 1)];
      }),
    );
    const json = a.optional("json");
    a.done();
    for (const f of faults) {
      if (!FAULTS.includes(f))
        throw new UsageError(`--faults: unknown fault "${f}"; the faults are ${FAULTS.join(", ")}`);
    }
    const settings = fleetSettings(stackName, sets);
    const w = settings.workload;
    const least = minimumSeconds(atSeconds, w.preStopDelaySeconds, w.drainSeconds);
    const seconds = secondsText === undefined ? least : Number(secondsText);
    if (!Number.isInteger(seconds) || seconds < 2 || seconds > 3600) {
      throw new UsageError(`--seconds is "${secondsText}"; must be an integer from 2 to 3600`);
    }
    if (faults.includes("pod-replacement") && seconds < least) {
      throw new UsageError(
        `--seconds ${seconds} ends before a replacement does: at least --at (${atSeconds}) + preStopDelaySeconds ` +
          `(${w.preStopDelaySeconds}) + drainSeconds (${w.drainSeconds}) + 10 = ${least}`,
      );
    }
    const maxLifetimeSeconds = lifetimeText === undefined ? undefined : Number(lifetimeText);
    if (maxLifetimeSeconds !== undefined && !(maxLifetimeSeconds > 0 && maxLifetimeSeconds <= 3600)) {
      throw new UsageError(`--max-lifetime is "${lifetimeText}"; must be seconds from 0 to 3600`);
    }
    exitOnSignals();
    const fleet = await startFleet({ settings, timings: stackTimings(settings), log: (l) => console.log(l) });
    const runs: FaultRun[] = [];
    try {
      const scale = 1;
      await initPgbench(fleet.direct, scale);
      for (const f of faults) {
        process.stdout.write(
          `\n${FAULT_TEXT[f]}: ${workers} workers, ${seconds} s, fault at ${atSeconds} s` +
            `${maxLifetimeSeconds !== undefined ? `, connections retired after ${maxLifetimeSeconds} s` : ""} ...\n`,
        );
        const r = await runFault(fleet, f, {
          workers,
          seconds,
          atSeconds,
          accounts: 100_000 * scale,
          ...(maxLifetimeSeconds !== undefined ? { maxLifetimeSeconds } : {}),
        });
        runs.push(r);
        process.stdout.write(`${formatFault(r)}\n`);
      }
    } finally {
      await fleet.stop();
    }
    console.log(
      `\nstack ${stackName}: ${w.replicas} replicas x ${w.processesPerPod} process(es), preStopDelaySeconds ` +
        `${w.preStopDelaySeconds}, drainSeconds ${w.drainSeconds}, serverLoginRetrySeconds ` +
        `${settings.pool.serverLoginRetrySeconds}; ${workers} workers, ${seconds} s, fault at ${atSeconds} s` +
        `${maxLifetimeSeconds !== undefined ? `, max lifetime ${maxLifetimeSeconds} s` : ""}\n`,
    );
    console.log(markdownTable(runs));
    if (json) fs.writeFileSync(json, JSON.stringify(runs, null, 2) + "\n");
    return 0;
  });
}
