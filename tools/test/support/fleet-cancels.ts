/**
 * Cancel requests through the local fleet's balancer, from two clients at once: psycopg 3 (a real driver,
 * libpq inside, `cancel_safe()`: encrypted like the login, as libpq 17's PQcancelCreate sends it) and the
 * harness's own client (a plain CancelRequest, as libpq's PQcancel sends it). Each cancel, like each new
 * connection, reaches a random ready replica; the replica that owns the query is found by peering. The
 * cancels go all at once (a burst) or one at a time; the queries and the harness's cancels may also be sent
 * straight to a replica's port.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import type * as net from "node:net";
import * as path from "node:path";
import * as readline from "node:readline";
import type { Conn } from "../../harness";
import { PgClient } from "../../harness/pgwire";
import { sleep } from "../../harness/proc";
import type { Fleet } from "../../fleet/fleet";

/** The venv tools/install-test-deps.sh makes (psycopg, tools/test/support/psycopg-requirements.txt). */
export const PSYCOPG_PYTHON = path.resolve(__dirname, "../../../.deps/psycopg/bin/python");
const HELPER = path.join(__dirname, "psycopg-cancel.py");

/** One query's end. */
export interface CancelOutcome {
  readonly driver: "psycopg" | "harness";
  /**
   * `cancelled` (57014), `completed` (its cancel was lost), `ended before its cancel` (its sleep was over
   * before the cancel went: the round's timing, not a lost cancel), or the error.
   */
  readonly outcome: string;
  /** From the cancel being sent to the query's end, seconds. */
  readonly afterCancel: number;
}

export interface CancelRound {
  readonly sent: number;
  readonly cancelled: number;
  readonly lost: number;
  readonly other: readonly string[];
  /** The slowest cancelled query's seconds from its cancel to its end. */
  readonly slowest: number;
  readonly outcomes: readonly CancelOutcome[];
  readonly libpq: number;
  /**
   * The slowest of the harness clients' logins (TCP, TLS and SCRAM through the balancer), seconds: how busy
   * the machine was, for a cancel's time to be read against.
   */
  readonly slowestLogin: number;
}

export interface CancelRoundOptions {
  readonly psycopg: number;
  readonly harness: number;
  /** pg_sleep's seconds: how long a query whose cancel was lost runs. */
  readonly sleepSeconds: number;
  /** After every query runs in PostgreSQL, how long until the cancels go. */
  readonly cancelAfterMs: number;
  /** Runs after that wait, before the cancels (e.g. starts a replacement and waits for its drain). */
  readonly beforeCancel?: () => Promise<void>;
  /**
   * `burst`: every cancel at once (psycopg's from a thread each; the harness's connections are made first and
   * every CancelRequest written in one tick). `sequential`: one at a time, each sent once the previous one's
   * query has ended, psycopg's first, then the harness's. @default burst
   */
  readonly spacing?: "burst" | "sequential";
  /** Where every query connects (the harness's, and psycopg's through PGHOST/PGPORT). @default the balancer */
  readonly queriesTo?: Pick<Conn, "host" | "port">;
  /**
   * Where the harness's cancels go; psycopg's go where its query connected, as libpq sends them.
   * @default where the query connected
   */
  readonly harnessCancelsTo?: Pick<Conn, "host" | "port">;
}

/** The libpq environment of the fleet's `export` lines, to `to` instead of the balancer if given. */
function libpqEnv(fleet: Fleet, to?: Pick<Conn, "host" | "port">): Record<string, string> {
  const env: Record<string, string> = Object.fromEntries(
    fleet.exportLines().map((l) => {
      const kv = l.replace(/^export /, "");
      return [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)];
    }),
  );
  return to ? { ...env, PGHOSTADDR: to.host, PGPORT: String(to.port) } : env;
}

/** A running psycopg helper: its next line, or its exit with what it wrote on stderr. */
interface Helper {
  readonly child: ChildProcessWithoutNullStreams;
  next(): Promise<string>;
}

/**
 * Helpers between rounds, each ready for its next request: a round takes one or starts one, and gives it back
 * once it has answered (the cancel cells run two rounds at a time). A helper that failed or was killed is not
 * given back. Idle, a helper keeps no test process alive: it exits at the end of its stdin, which closes with
 * this process.
 */
const idle: Helper[] = [];

function startHelper(): Helper {
  if (!fs.existsSync(PSYCOPG_PYTHON)) {
    throw new Error(
      `${PSYCOPG_PYTHON} is missing: run bash tools/install-test-deps.sh (it installs psycopg)`,
    );
  }
  const child = spawn(PSYCOPG_PYTHON, [HELPER], {
    env: { PATH: "/usr/bin:/bin" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  // a write to a helper that has exited fails here, and the round sees the exit (below), not an unhandled EPIPE
  child.stdin.on("error", () => undefined);
  const it = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code, signal) =>
      reject(new Error(`psycopg helper exited ${code ?? signal}: ${stderr}`)),
    ),
  );
  exited.catch(() => undefined);
  return {
    child,
    next: async () => {
      const line = await Promise.race([it.next(), exited]);
      if (line.done) throw new Error(`psycopg helper ended its output: ${stderr}`);
      return line.value;
    },
  };
}

/** Whether a helper keeps this process alive: while it serves a round, not while it waits for one. */
function hold(h: Helper, on: boolean): void {
  // a child's "pipe" streams are sockets, which Node's types give as plain streams
  const pipes = [h.child.stdin, h.child.stdout, h.child.stderr] as unknown as net.Socket[];
  for (const handle of [h.child, ...pipes]) {
    if (on) handle.ref();
    else handle.unref();
  }
}

/** Starts a round on a psycopg helper; resolves once its queries are sent, with how to cancel them and the results. */
async function startPsycopg(
  fleet: Fleet,
  o: CancelRoundOptions,
  marker: string,
): Promise<{
  cancel(): void;
  /** Ends the helper at once (a no-op once it has exited); one that has answered is given back instead. */
  kill(): void;
  result: Promise<{ libpq: number; results: CancelOutcome[]; errors: string[] }>;
}> {
  // an idle helper that has exited since (killed with its process group, say) is dropped, not reused
  let h: Helper | undefined;
  while ((h = idle.pop()) && (h.child.exitCode !== null || h.child.signalCode !== null));
  h ??= startHelper();
  hold(h, true);
  let answered = false;
  const kill = () => {
    if (answered) return;
    answered = true; // not given back
    h.child.kill("SIGKILL");
  };
  const env = { ...libpqEnv(fleet, o.queriesTo), PGCONNECT_TIMEOUT: "10" };
  const request = { env, clients: o.psycopg, sleep: o.sleepSeconds, marker, spacing: o.spacing ?? "burst" };
  // sequential: each cancel waits for its query, so a round may take as long as every query's sleep
  const timer = setTimeout(kill, 60_000 + o.psycopg * o.sleepSeconds * 1000);
  h.child.stdin.write(`${JSON.stringify(request)}\n`);
  const first = await h.next().catch((e: unknown) => {
    clearTimeout(timer);
    kill();
    throw e;
  });
  if (first !== "started") {
    clearTimeout(timer);
    kill();
    throw new Error(`psycopg helper: ${first}`);
  }
  const result = (async () => {
    const last = await h.next().finally(() => clearTimeout(timer));
    const r = JSON.parse(last) as {
      libpq: number;
      results: { outcome: string; afterCancel: number | null }[];
      cancelErrors: string[];
    };
    if (!answered) {
      answered = true;
      hold(h, false);
      idle.push(h);
    }
    return {
      libpq: r.libpq,
      errors: r.cancelErrors,
      results: r.results.map((x) => ({
        driver: "psycopg" as const,
        outcome: x.outcome,
        afterCancel: x.afterCancel ?? Number.NaN,
      })),
    };
  })();
  result.catch(() => undefined);
  return { cancel: () => h.child.stdin.write("cancel\n"), kill, result };
}

/** Waits until PostgreSQL runs `n` queries tagged `marker`; throws past `maxMs`. */
async function untilRunning(fleet: Fleet, marker: string, n: number, maxMs: number): Promise<void> {
  const monitor = await PgClient.connect(fleet.world.pg.conn(), { applicationName: "fleet-cancel-monitor" });
  try {
    const started = Date.now();
    for (;;) {
      const r = await monitor.query(
        `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%${marker}%' ` +
          "AND pid <> pg_backend_pid()",
      );
      const running = Number(r.rows[0][0]);
      if (running >= n) return;
      if (Date.now() - started > maxMs)
        throw new Error(`only ${running} of ${n} queries ran after ${maxMs} ms`);
      await sleep(50);
    }
  } finally {
    monitor.close();
  }
}

/**
 * `psycopg` + `harness` clients (through the balancer, or to `queriesTo`) each start
 * `SELECT pg_sleep(sleepSeconds)`; once PostgreSQL runs every one (a cancel for a query still queued for a
 * server is dropped by PgBouncer, a limit docs/tuning.md states; this round tests that cancels reach the
 * process running the query), and `cancelAfterMs` later, every query is cancelled where it connected (the
 * harness's to `harnessCancelsTo` if given), as `spacing` says.
 */
export async function cancelRound(fleet: Fleet, o: CancelRoundOptions): Promise<CancelRound> {
  const marker = `fleet-cancel-${crypto.randomBytes(6).toString("hex")}`;
  const sql = `SELECT pg_sleep(${o.sleepSeconds}) /* ${marker} */`;
  const queriesTo: Conn = { ...fleet.conn, ...o.queriesTo };
  const cancelsTo = o.harnessCancelsTo ?? queriesTo;
  const conns: PgClient[] = [];
  let py: Awaited<ReturnType<typeof startPsycopg>> | undefined;
  try {
    py = o.psycopg > 0 ? await startPsycopg(fleet, o, marker) : undefined;
    let slowestLogin = 0;
    for (let i = 0; i < o.harness; i++) {
      const at = Date.now();
      conns.push(await PgClient.connect(queriesTo, { applicationName: "fleet-harness" }));
      slowestLogin = Math.max(slowestLogin, (Date.now() - at) / 1000);
    }
    const queries = conns.map((c) =>
      c.query(sql).then(
        () => "completed",
        (e: { code?: string; message: string }) => (e.code === "57014" ? "cancelled" : (e.code ?? e.message)),
      ),
    );
    const done = queries.map(() => false);
    queries.forEach((q, i) => void q.finally(() => (done[i] = true)));
    await untilRunning(fleet, marker, o.psycopg + o.harness, (o.sleepSeconds * 1000) / 2);
    await sleep(o.cancelAfterMs);
    await o.beforeCancel?.();
    py?.cancel();
    let harness: CancelOutcome[];
    if (o.spacing === "sequential") {
      // one cancel at a time: psycopg's are all answered before the harness sends its first
      await py?.result.catch(() => undefined);
      harness = [];
      for (const [i, c] of conns.entries()) {
        if (done[i]) {
          harness.push({ driver: "harness", outcome: "ended before its cancel", afterCancel: Number.NaN });
          continue;
        }
        const at = Date.now();
        await c.cancel(cancelsTo).catch(() => undefined);
        const outcome = await queries[i];
        harness.push({ driver: "harness", outcome, afterCancel: (Date.now() - at) / 1000 });
      }
    } else {
      // every connection first, then every CancelRequest in one tick: they reach PgBouncer together
      const opened = await Promise.all(
        conns.map((c) => c.openCancel(cancelsTo).catch(() => ({ send: () => Promise.resolve(undefined) }))),
      );
      harness = await Promise.all(
        opened.map(async (cancel, i) => {
          const endedBefore = done[i];
          const at = Date.now();
          await cancel.send().catch(() => undefined);
          const outcome = endedBefore ? "ended before its cancel" : await queries[i];
          return { driver: "harness" as const, outcome, afterCancel: (Date.now() - at) / 1000 };
        }),
      );
    }
    const p = py ? await py.result : { libpq: 0, results: [], errors: [] };
    const outcomes = [...p.results, ...harness];
    const cancelled = outcomes.filter((x) => x.outcome === "cancelled");
    return {
      sent: outcomes.length,
      cancelled: cancelled.length,
      lost: outcomes.filter((x) => x.outcome === "completed").length,
      other: [
        ...outcomes
          .filter((x) => x.outcome !== "cancelled" && x.outcome !== "completed")
          .map((x) => x.outcome),
        ...p.errors,
      ],
      slowest: Math.max(0, ...cancelled.map((x) => x.afterCancel)),
      outcomes,
      libpq: p.libpq,
      slowestLogin,
    };
  } finally {
    // on a failure before the cancels, the helper would wait for its line until its timer
    py?.kill();
    for (const c of conns) c.close();
  }
}

/** Sums rounds. */
export function totals(rounds: readonly CancelRound[]): Omit<CancelRound, "outcomes" | "libpq"> {
  return {
    slowestLogin: Math.max(0, ...rounds.map((r) => r.slowestLogin)),
    sent: rounds.reduce((s, r) => s + r.sent, 0),
    cancelled: rounds.reduce((s, r) => s + r.cancelled, 0),
    lost: rounds.reduce((s, r) => s + r.lost, 0),
    other: rounds.flatMap((r) => r.other),
    slowest: Math.max(0, ...rounds.map((r) => r.slowest)),
  };
}
