/**
 * npm run fault -- --stack prod [--workers 20 --seconds 15 --at 5]
 *
 * Restarts PostgreSQL (and then PgBouncer) in the middle of a load on the local harness and times every
 * transaction, to show that PgBouncer recovers by itself, which transactions fail, and how long it takes
 * until new transactions succeed. pgbench cannot do this: a pgbench client whose connection drops is
 * aborted for good, so the load here is `workers` reconnecting clients of the minimal wire client.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { type Conn, exitOnSignals, type PooledStack, startPooledStack } from "../harness";
import { initPgbench } from "./pgbench";
import { PgClient } from "../harness/pgwire";
import { listStacks } from "../../stacks/stack-file";
import { loadStackSettings } from "../../stacks/settings";
import { Args, runMain } from "../common";

export type Fault = "postgres-fast" | "postgres-immediate" | "pgbouncer-sigint" | "pgbouncer-sigterm";
export const FAULTS: readonly Fault[] = [
  "postgres-fast",
  "postgres-immediate",
  "pgbouncer-sigint",
  "pgbouncer-sigterm",
];

const FAULT_TEXT: Record<Fault, string> = {
  "postgres-fast": "PostgreSQL restart, fast shutdown (SIGINT: rolls back open transactions, disconnects)",
  "postgres-immediate": "PostgreSQL restart, immediate shutdown (SIGQUIT: a crash; recovery on start)",
  "pgbouncer-sigint":
    "PgBouncer restart with SIGINT (safe shutdown: SHUTDOWN WAIT_FOR_SERVERS, transactions in flight finish)",
  "pgbouncer-sigterm":
    "PgBouncer restart with SIGTERM (1.23+: SHUTDOWN WAIT_FOR_CLIENTS, waits for clients to leave; 1.18: immediate)",
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
}

export interface FaultTimeline {
  /** When the fault began (signal sent). */
  readonly faultAt: number;
  /** When the restarted server accepted connections again. */
  readonly upAt: number;
}

export interface FaultAnalysis {
  readonly transactions: number;
  readonly failures: number;
  /**
   * Failed transactions that had started before the fault: in flight when it hit. Not counted: those
   * PgBouncer refused to begin (see {@link refusedAtBegin}).
   */
  readonly failedInFlight: number;
  /**
   * Transactions sent at most {@link BEGIN_RACE_MS} before the fault that PgBouncer refused with `server
   * shutting down`: it says that only to a client that asks for a server after the shutdown began, so the
   * query reached it after the signal and no transaction had begun there (TLS makes that window wider: the
   * bytes are decrypted first).
   */
  readonly refusedAtBegin: number;
  /** Failures of attempts that started while the server was down (between the fault and `upAt`). */
  readonly failedDuringOutage: number;
  /** Failures of attempts that started after the server was up again: the pooler had not recovered. */
  readonly failedAfterRecovery: number;
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
  readonly errors: readonly { message: string; count: number }[];
}

/** How long before the signal a transaction may have been sent and still reach PgBouncer after it. */
export const BEGIN_RACE_MS = 100;
/** PgBouncer's answer to a client that asks for a server during a shutdown. */
export const REFUSED_AT_BEGIN = "server shutting down";

/** Sorts the attempts of a run into what failed when, relative to the fault. */
export function analyse(attempts: readonly Attempt[], t: FaultTimeline): FaultAnalysis {
  const failed = attempts.filter((a) => !a.ok);
  const beforeFault = failed.filter((f) => f.stage === "transaction" && f.start < t.faultAt);
  const refused = beforeFault.filter(
    (f) => f.error === REFUSED_AT_BEGIN && t.faultAt - f.start <= BEGIN_RACE_MS,
  );
  const afterUp = attempts.filter((a) => a.ok && a.start >= t.upAt).sort((a, b) => a.end - b.end);
  const firstOk = afterUp[0];
  const counts = new Map<string, number>();
  for (const f of failed) {
    const key = `${f.stage}: ${(f.error ?? "").replace(/\d+/g, "#")}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const lastFail = failed.reduce((m, f) => Math.max(m, f.end), -Infinity);
  const lastFailStart = failed.reduce((m, f) => Math.max(m, f.start), -Infinity);
  const lastAttemptStart = attempts.reduce((m, f) => Math.max(m, f.start), -Infinity);
  const recovery = attempts
    .filter((a) => a.start > lastFailStart && a.ok)
    .reduce((m, a) => Math.min(m, a.start), Infinity);
  return {
    transactions: attempts.filter((a) => a.ok).length,
    failures: failed.length,
    failedInFlight: beforeFault.length - refused.length,
    refusedAtBegin: refused.length,
    failedDuringOutage: failed.filter((f) => f.start >= t.faultAt && f.start < t.upAt).length,
    failedAfterRecovery: failed.filter((f) => f.start >= t.upAt).length,
    firstSuccessAfterUpMs: firstOk ? firstOk.end - t.upAt : undefined,
    recoveredMs: !failed.length
      ? 0
      : Number.isFinite(recovery) && lastFailStart < lastAttemptStart
        ? Math.max(0, recovery - t.faultAt)
        : undefined,
    lastFailureMs: failed.length ? lastFail - t.faultAt : undefined,
    longestSuccessMs: Math.max(0, ...attempts.filter((a) => a.ok).map((a) => a.end - a.start)),
    errors: [...counts.entries()]
      .map(([message, count]) => ({ message, count }))
      .sort((a, b) => b.count - a.count),
  };
}

/** An application-like transaction: one row updated, 1-10 ms of work while holding it. */
function transactionSql(accounts: number): string {
  const aid = 1 + Math.floor(Math.random() * accounts);
  const ms = 1 + Math.floor(Math.random() * 10);
  return (
    `BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = ${aid}; ` +
    `SELECT pg_sleep(${ms / 1000}); COMMIT;`
  );
}

/** Workers that each run transactions back to back, reconnecting after any failure, until `endAt`. */
export async function runWorkers(
  conn: Conn,
  workers: number,
  endAt: number,
  t0: number,
  accounts: number,
): Promise<Attempt[]> {
  const attempts: Attempt[] = [];
  const now = () => Date.now() - t0;
  const worker = async (w: number) => {
    let client: PgClient | undefined;
    while (Date.now() < endAt) {
      const start = now();
      if (!client || client.closed) {
        try {
          client = await PgClient.connect(conn, { timeoutMs: 5000, applicationName: `fault-${w}` });
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
      const txStart = now();
      try {
        await client.query(transactionSql(accounts));
        attempts.push({ worker: w, start: txStart, end: now(), ok: true });
      } catch (e) {
        attempts.push({
          worker: w,
          start: txStart,
          end: now(),
          ok: false,
          stage: "transaction",
          error: (e as Error).message,
        });
        // a transaction that failed mid-way leaves the session in an aborted transaction: start clean
        client.close();
        client = undefined;
      }
    }
    client?.close();
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return attempts;
}

export interface FaultRun {
  readonly fault: Fault;
  readonly description: string;
  readonly timeline: FaultTimeline;
  readonly analysis: FaultAnalysis;
  /** For a PgBouncer restart: how long the shutdown took after the signal. */
  readonly stopMs?: number;
  readonly loadavg: readonly number[];
}

export async function runFault(
  stack: PooledStack,
  fault: Fault,
  o: { workers: number; seconds: number; atSeconds: number; accounts: number },
): Promise<FaultRun> {
  const loadavg = os.loadavg();
  const t0 = Date.now();
  const endAt = t0 + o.seconds * 1000;
  const load = runWorkers(stack.pooled, o.workers, endAt, t0, o.accounts);
  await new Promise((r) => setTimeout(r, o.atSeconds * 1000));
  const faultAt = Date.now() - t0;
  let stopMs: number | undefined;
  if (fault === "postgres-fast" || fault === "postgres-immediate") {
    await stack.postgres.restart({ mode: fault === "postgres-fast" ? "fast" : "immediate" });
  } else {
    stopMs = (await stack.pgbouncer.restart(fault === "pgbouncer-sigint" ? "SIGINT" : "SIGTERM")).stopMs;
  }
  const upAt = Date.now() - t0;
  const attempts = await load;
  const timeline = { faultAt, upAt };
  return {
    fault,
    description: FAULT_TEXT[fault],
    timeline,
    analysis: analyse(attempts, timeline),
    stopMs,
    loadavg,
  };
}

export function formatFault(r: FaultRun): string {
  const a = r.analysis;
  const ms = (v: number | undefined) => (v === undefined ? "never" : `${(v / 1000).toFixed(2)} s`);
  return [
    `${r.description}`,
    `  fault at ${ms(r.timeline.faultAt)}, server accepting again ${ms(r.timeline.upAt - r.timeline.faultAt)} later` +
      (r.stopMs !== undefined ? ` (PgBouncer took ${ms(r.stopMs)} to shut down)` : "") +
      `; load average ${r.loadavg.map((l) => l.toFixed(2)).join(" ")}`,
    `  ${a.transactions} transactions ok, ${a.failures} failed attempts: ${a.failedInFlight} in flight at the fault, ` +
      `${a.failedDuringOutage} started during the outage, ${a.failedAfterRecovery} started after the server was back`,
    `  recovered (every attempt from then on succeeded) ${ms(a.recoveredMs)} after the fault; the first ` +
      `transaction begun after the server was back succeeded ${ms(a.firstSuccessAfterUpMs)} after that; last ` +
      `failure ${ms(a.lastFailureMs)} after the fault; slowest successful transaction ${ms(a.longestSuccessMs)}`,
    `  sent within ${BEGIN_RACE_MS} ms before the fault and refused before they began ("${REFUSED_AT_BEGIN}"): ` +
      `${a.refusedAtBegin}`,
    `  only in-flight transactions failed: ${a.failures === a.failedInFlight ? "yes" : "NO"}`,
    ...a.errors.slice(0, 6).map((e) => `    ${String(e.count).padStart(5)} x ${e.message}`),
  ].join("\n");
}

const USAGE = `usage: npm run fault -- --stack <${listStacks().join("|")}> [options]

  --workers N     reconnecting clients (default 20)
  --seconds S     length of each run (default 30: PgBouncer's server_login_retry is 15 s by default)
  --at S          when the fault hits (default 5)
  --faults LIST   comma-separated, from ${FAULTS.join(", ")} (default: all)
  --json FILE     also write the runs as JSON`;

if (require.main === module) {
  runMain(USAGE, async () => {
    const a = new Args(process.argv.slice(2));
    const stackName = a.string("stack");
    const workers = a.int("workers", 20, 1, 1000);
    const seconds = a.int("seconds", 30, 2, 3600);
    const atSeconds = a.int("at", 5, 1, 3600);
    const faults = a.string("faults", FAULTS.join(",")).split(",") as Fault[];
    const json = a.optional("json");
    a.done();
    for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`unknown fault "${f}"`);
    const settings = loadStackSettings(stackName);
    exitOnSignals();
    const stack = await startPooledStack(settings);
    const runs: FaultRun[] = [];
    try {
      const scale = 1;
      await initPgbench(stack.direct, scale);
      for (const f of faults) {
        process.stdout.write(
          `\n${FAULT_TEXT[f]}: ${workers} workers, ${seconds} s, fault at ${atSeconds} s ...\n`,
        );
        const r = await runFault(stack, f, { workers, seconds, atSeconds, accounts: 100_000 * scale });
        runs.push(r);
        process.stdout.write(`${formatFault(r)}\n`);
      }
    } finally {
      await stack.stop();
    }
    if (json) fs.writeFileSync(json, JSON.stringify(runs, null, 2) + "\n");
    return 0;
  });
}
