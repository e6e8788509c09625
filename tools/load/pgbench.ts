/** pgbench, driven and read: its exit code, its summary, its progress lines and its error lines. */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Conn, libpqEnv, pgBinary } from "../harness";

/**
 * What the clients run. `tpcb` and `select-only` are pgbench's built-ins (they need `pgbench -i` tables);
 * `sleep` needs no tables: each transaction holds a server connection for 1-10 ms, like an application
 * transaction that waits on the database, and is what a cluster run uses against a real database.
 */
export type Workload = "tpcb" | "select-only" | "sleep";
export const WORKLOADS: readonly Workload[] = ["tpcb", "select-only", "sleep"];

/** The `sleep` workload's script. */
export const SLEEP_SCRIPT = [
  "\\set ms random(1, 10)",
  "BEGIN;",
  "SELECT pg_sleep(:ms / 1000.0);",
  "END;",
  "",
].join("\n");

export interface PgbenchOptions {
  readonly conn: Conn;
  readonly clients: number;
  /** @default min(clients, CPU count) */
  readonly threads?: number;
  readonly durationSeconds: number;
  readonly workload: Workload;
  /** Target transactions per second over all clients (`--rate`); 0 runs flat out. @default 0 */
  readonly rate?: number;
  /**
   * `--protocol`. `prepared` breaks through a transaction pooler without max_prepared_statements
   * (PgBouncer 1.21+). @default simple
   */
  readonly protocol?: "simple" | "extended" | "prepared";
  /** Called for every `-P 1` progress line. */
  readonly onProgress?: (p: PgbenchProgress) => void;
  /** Kill pgbench after this long. @default durationSeconds + 120 s */
  readonly timeoutMs?: number;
  /** `-C`: a new connection for every transaction (the connect is part of its latency). @default false */
  readonly connectPerTransaction?: boolean;
  /**
   * `-l`: log every transaction (see {@link parseTransactionLog}) and return its lines in
   * `PgbenchResult.transactionLog`. @default false
   */
  readonly transactionLog?: boolean;
}

export interface PgbenchProgress {
  readonly seconds: number;
  readonly tps: number;
  readonly latencyMs: number;
  readonly failed: number;
}

export interface PgbenchResult {
  /** pgbench's exit code: 0 ok, 1 bad arguments or connection failure at start, 2 clients aborted. */
  readonly exitCode: number;
  readonly transactions: number;
  /** "number of failed transactions" (serialization and deadlock failures; not aborted clients). */
  readonly failed: number;
  readonly tps: number;
  readonly latencyAvgMs: number;
  readonly latencyStddevMs?: number;
  readonly initialConnectionMs?: number;
  /** With `-C`: pgbench's "average connection time" (the connects alone). */
  readonly averageConnectionMs?: number;
  /** With `transactionLog`: every line of pgbench's per-transaction logs (all threads). */
  readonly transactionLog?: readonly string[];
  /** Error lines that say a connection could not be made or was lost. */
  readonly connectionErrors: number;
  /** Clients pgbench gave up on ("client N aborted"). */
  readonly abortedClients: number;
  /** The first distinct error lines, for the report. */
  readonly errors: readonly string[];
  readonly progress: readonly PgbenchProgress[];
  readonly stdout: string;
  readonly stderr: string;
  /** Ok: exit code 0, some transactions, no failed transaction, no aborted client, no connection error. */
  readonly ok: boolean;
}

function num(text: string, re: RegExp): number | undefined {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

export function parseProgress(line: string): PgbenchProgress | undefined {
  const m = /^progress: ([\d.]+) s, ([\d.]+) tps, lat ([\d.]+|NaN) ms stddev [\d.]+|NaN/.exec(line);
  if (!m) return undefined;
  return {
    seconds: Number(m[1]),
    tps: Number(m[2]),
    latencyMs: Number(m[3]),
    failed: num(line, /, (\d+) failed/) ?? 0,
  };
}

const CONNECTION_ERROR =
  /connection to server .* failed|could not connect|could not create connection|server closed the connection|connection .* lost|no more connections allowed|too many clients|remaining connection slots|query_wait_timeout|server login has been failing/i;

/** Reads pgbench's summary and error lines. */
export function parsePgbench(
  exitCode: number,
  stdout: string,
  stderr: string,
  progress: PgbenchProgress[] = [],
) {
  const transactions = num(stdout, /number of transactions actually processed: (\d+)/) ?? 0;
  const failed = num(stdout, /number of failed transactions: (\d+)/) ?? 0;
  const errLines = stderr.split("\n").filter((l) => /^pgbench: (error|fatal|warning)/.test(l));
  const connectionErrors = errLines.filter((l) => CONNECTION_ERROR.test(l)).length;
  const abortedClients = errLines.filter((l) => /client \d+ (script \d+ )?aborted/.test(l)).length;
  const distinct = [
    ...new Set(errLines.map((l) => l.replace(/client \d+/g, "client N").replace(/\d+/g, "#"))),
  ];
  const result: PgbenchResult = {
    exitCode,
    transactions,
    failed,
    tps: num(stdout, /tps = ([\d.]+)/) ?? 0,
    latencyAvgMs: num(stdout, /latency average = ([\d.]+) ms/) ?? NaN,
    latencyStddevMs: num(stdout, /latency stddev = ([\d.]+) ms/),
    initialConnectionMs: num(stdout, /initial connection time = ([\d.]+) ms/),
    averageConnectionMs: num(stdout, /average connection time = ([\d.]+) ms/),
    connectionErrors,
    abortedClients,
    errors: distinct
      .slice(0, 8)
      .map((d) => errLines.find((l) => l.replace(/client \d+/g, "client N").replace(/\d+/g, "#") === d) ?? d),
    progress,
    stdout,
    stderr,
    ok: exitCode === 0 && transactions > 0 && failed === 0 && abortedClients === 0 && connectionErrors === 0,
  };
  return result;
}

/** One line of pgbench's per-transaction log (`-l`). */
export interface LoggedTransaction {
  readonly client: number;
  /**
   * Microseconds; under `-R`, from the transaction's scheduled start to its end (so it includes the
   * schedule lag). Undefined for a failed or skipped transaction.
   */
  readonly latencyUs?: number;
  /** Under `-R`: microseconds between the scheduled and the actual start. */
  readonly lagUs?: number;
  /** `time_epoch` + `time_us` of the transaction's end, in seconds. */
  readonly endSeconds: number;
}

/**
 * pgbench 15's per-transaction log line: `client_id transaction_no time script_no time_epoch time_us
 * [schedule_lag] [retries]` (time `failed` or `skipped` for those transactions).
 */
export function parseTransactionLog(lines: readonly string[], rate: boolean): LoggedTransaction[] {
  const out: LoggedTransaction[] = [];
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !/^\d+$/.test(f[0])) continue;
    const time = /^\d+$/.test(f[2]) ? Number(f[2]) : undefined;
    const lag = rate && f.length >= 7 && /^\d+$/.test(f[6]) ? Number(f[6]) : undefined;
    out.push({
      client: Number(f[0]),
      ...(time !== undefined ? { latencyUs: time } : {}),
      ...(lag !== undefined ? { lagUs: lag } : {}),
      endSeconds: Number(f[4]) + Number(f[5]) / 1e6,
    });
  }
  return out;
}

function workloadArgs(w: Workload, dir: string): string[] {
  if (w === "tpcb") return ["-b", "tpcb-like"];
  if (w === "select-only") return ["-b", "select-only"];
  const file = path.join(dir, "sleep.sql");
  fs.writeFileSync(file, SLEEP_SCRIPT);
  return ["-n", "-f", file];
}

/** Runs pgbench to completion; never throws on a pgbench failure (read `exitCode` and `ok`). */
export async function runPgbench(o: PgbenchOptions): Promise<PgbenchResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgbench-"));
  try {
    const threads = o.threads ?? Math.max(1, Math.min(o.clients, os.cpus().length));
    const args = [
      "-c",
      String(o.clients),
      "-j",
      String(threads),
      "-T",
      String(o.durationSeconds),
      "-P",
      "1",
      "-M",
      o.protocol ?? "simple",
      ...(o.rate ? ["-R", String(o.rate)] : []),
      ...(o.connectPerTransaction ? ["-C"] : []),
      ...(o.transactionLog ? ["-l", `--log-prefix=${path.join(dir, "txlog")}`] : []),
      ...workloadArgs(o.workload, dir),
    ];
    const progress: PgbenchProgress[] = [];
    let stdout = "";
    let stderr = "";
    const code = await new Promise<number>((resolve) => {
      const child = spawn(pgBinary("pgbench"), args, {
        env: { ...process.env, ...libpqEnv(o.conn) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? (o.durationSeconds + 120) * 1000);
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      let partial = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        const lines = (partial + d.toString()).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) {
          const p = parseProgress(l);
          if (p) {
            progress.push(p);
            o.onProgress?.(p);
          }
        }
      });
      child.on("close", (c, sig) => {
        clearTimeout(timer);
        resolve(c ?? (sig ? 128 : 1));
      });
    });
    const result = parsePgbench(code, stdout, stderr, progress);
    if (!o.transactionLog) return result;
    const lines = fs
      .readdirSync(dir)
      .filter((f) => f.startsWith("txlog"))
      .flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n"))
      .filter((l) => l !== "");
    return { ...result, transactionLog: lines };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Creates pgbench's tables at `scale` (100 000 accounts per unit). */
export async function initPgbench(conn: Conn, scale: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(pgBinary("pgbench"), ["-i", "-q", "-s", String(scale)], {
      env: { ...process.env, ...libpqEnv(conn) },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("close", (c) =>
      c === 0 ? resolve() : reject(new Error(`pgbench -i exited ${c}: ${err.trim()}`)),
    );
  });
}
