/**
 * Client logins as production sends them, for the tests that hold the pooler to "no sequence of client
 * logins can make a later correct login fail": whole logins (SCRAM, then one query), logins dropped
 * halfway, concurrent bursts, and PgBouncer's admin console over its unix socket.
 */
import { type HandshakeStage, PgClient } from "./pgwire";
import type { PgBouncerFiles } from "./pgbouncer";
import { type Conn, pgBinary } from "./postgres";
import { runAsUser, sleep } from "./proc";

/** How one login ended. */
export type LoginOutcome =
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly ms: number; readonly error: string };

/** How often PgBouncer's janitor runs its pool maintenance (`full_maint_period` in src/janitor.c, 1/3 s). */
export const PGBOUNCER_MAINTENANCE_PERIOD_MS = 334;

/**
 * What the bound allows the retried server login itself, which the documented bound left out: a connect,
 * TLS and SCRAM with PostgreSQL added 15 to 80 ms to a client's first login here (2 cores at load 22).
 * auth_query mode's lookup pool is the one exception the bound does not cover (components/credentials/
 * README.md, "PostgreSQL going away").
 */
export const SERVER_LOGIN_ALLOWANCE_MS = 200;

/**
 * After PostgreSQL was down, how long from the moment it accepts again until a pool that clients stayed
 * connected to serves again: a failed server login keeps every new client out ("server login has been
 * failing … (server_login_retry)") until a server login succeeds, and PgBouncer starts the next one
 * `server_login_retry` after the last one began (`last_connect_time`, src/objects.c), at its next maintenance
 * run, while the pool has clients (`min_pool_size`); that login then takes its own time
 * ({@link SERVER_LOGIN_ALLOWANCE_MS}). A pool with no client connected tries again only when a client
 * arrives, and refuses that client.
 */
export function recoveryAfterOutageMs(serverLoginRetrySeconds: number): number {
  return serverLoginRetrySeconds * 1000 + PGBOUNCER_MAINTENANCE_PERIOD_MS + SERVER_LOGIN_ALLOWANCE_MS;
}

/** PgBouncer's and PostgreSQL's words for a refused password (or an unknown user). */
export const REFUSED_PASSWORD = /SASL authentication failed|password authentication failed|no such user/;

/**
 * Logs in, runs one query that needs a server connection (`SELECT 1`; `SHOW VERSION` on PgBouncer's admin
 * console, database `pgbouncer`), and closes; never throws.
 */
export async function tryLogin(conn: Conn, opts: { timeoutMs?: number } = {}): Promise<LoginOutcome> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const sql = conn.database === "pgbouncer" ? "SHOW VERSION" : "SELECT 1";
  let client: PgClient | undefined;
  try {
    client = await PgClient.connect(conn, { timeoutMs, applicationName: "clipper-login-test" });
    const r = await withTimeout(client.query(sql), timeoutMs, sql);
    if (r.rows.length !== 1) throw new Error(`${sql} returned ${JSON.stringify(r.rows)}`);
    return { ok: true, ms: Date.now() - started };
  } catch (e) {
    return { ok: false, ms: Date.now() - started, error: e instanceof Error ? e.message : String(e) };
  } finally {
    client?.close();
  }
}

/** Starts a login and walks away at `stage`; never throws (a refusal before that stage is fine too). */
export async function abandonLogin(conn: Conn, stage: HandshakeStage): Promise<void> {
  try {
    await PgClient.abandon(conn, stage, { timeoutMs: 5000 });
  } catch {
    // refused before it could be abandoned: what the test wants either way is what comes after
  }
}

/**
 * Whether `SHOW SERVERS` (a process's admin console, unaligned rows as {@link adminCommand} returns them)
 * lists a server connection logged in to PostgreSQL as `user` (as anyone when `undefined`), past its login
 * (state active, idle, used or tested; `new` is one still logging in).
 */
export function hasServer(showServers: string, user: string | undefined): boolean {
  return showServers
    .split("\n")
    .map((l) => l.split("|"))
    .some(
      (f) =>
        f[0] === "S" &&
        (user === undefined || f[1] === user) &&
        ["active", "idle", "used", "tested"].includes(f[4]),
    );
}

/**
 * Waits until process `f`'s `SHOW SERVERS` lists a server logged in as `user` (as anyone when `undefined`;
 * {@link hasServer}), looking every 20 ms for at most `deadlineMs`; resolves with the milliseconds it waited,
 * throws past the deadline.
 * For a server login PgBouncer started on its own (after a refused login): the console says when it is done,
 * no login has to try.
 */
export async function untilServer(
  f: Pick<PgBouncerFiles, "unixSocketDir" | "port">,
  user: string | undefined,
  deadlineMs = 5000,
): Promise<number> {
  const started = Date.now();
  while (!hasServer(await adminCommand(f, "SHOW SERVERS"), user)) {
    if (Date.now() - started > deadlineMs)
      throw new Error(`no server logged in as ${user ?? "anyone"} after ${deadlineMs} ms`);
    await sleep(20);
  }
  return Date.now() - started;
}

/** `n` logins at once; `conns[i % conns.length]` for the i-th. */
export function burst(conns: readonly Conn[], n: number): Promise<LoginOutcome[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => tryLogin(conns[i % conns.length])));
}

/**
 * A command on the admin console of one PgBouncer process (`RELOAD`, `RECONNECT`, `SHOW POOLS`), as its own
 * OS user over its unix socket: PgBouncer lets that user in as `pgbouncer` without a password, so the ini
 * needs no `admin_users`.
 */
export async function adminCommand(
  f: Pick<PgBouncerFiles, "unixSocketDir" | "port">,
  sql: string,
): Promise<string> {
  const r = await runAsUser(
    pgBinary("psql"),
    [
      "-X",
      "-A",
      "-t",
      "-q",
      "-h",
      f.unixSocketDir,
      "-p",
      String(f.port),
      "-U",
      "pgbouncer",
      "-d",
      "pgbouncer",
      "-c",
      sql,
    ],
    {
      timeoutMs: 20_000,
      env: { PGPASSWORD: "", PGSSLMODE: "disable", PGCONNECT_TIMEOUT: "10" },
    },
  );
  if (r.code !== 0) throw new Error(`pgbouncer console ${sql}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
