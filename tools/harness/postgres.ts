/** A throwaway PostgreSQL 15 cluster on 127.0.0.1, run as the unprivileged `postgres` user. */
import type { ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  exited,
  freePort,
  makeRunDir,
  readPid,
  requireBinary,
  runAsIds,
  runAsUserOk,
  signal,
  sleep,
  spawnAsUser,
  track,
  untrack,
  within,
  writeOwned,
} from "./proc";
import {
  type IssueOptions,
  type IssuedCert,
  type TestCa,
  harnessPki,
  issueCertAsync,
  issueLocalCertAsync,
  makeTestCaAsync,
} from "./tls";
import { run, runOk } from "../common";
import type { Conn } from "./conn";
import { PgClient, PgError } from "./pgwire";

/** Debian's PostgreSQL 15 binaries. */
export const PG_BIN = "/usr/lib/postgresql/15/bin";

export function pgBinary(name: string): string {
  return requireBinary(path.join(PG_BIN, name), "postgresql-15");
}

export type { ClientTls, Conn } from "./conn";

export interface PsqlOptions {
  /** @default 30000 */
  readonly timeoutMs?: number;
}

/** libpq environment for `conn` (pgbench and psql read it). */
export function libpqEnv(conn: Conn): NodeJS.ProcessEnv {
  const tls = conn.tls;
  return {
    PGHOST: tls?.hostname ?? conn.host,
    ...(tls?.hostname !== undefined ? { PGHOSTADDR: conn.host } : {}),
    PGPORT: String(conn.port),
    PGUSER: conn.user,
    PGDATABASE: conn.database,
    PGCONNECT_TIMEOUT: "10",
    PGSSLMODE: tls?.sslmode ?? "prefer",
    // an absent file, not ~/.postgresql/root.crt: only what the test names is trusted
    PGSSLROOTCERT: tls?.rootCertFile ?? "/nonexistent/root.crt",
    ...(conn.password !== undefined ? { PGPASSWORD: conn.password } : {}),
  };
}

/** Runs SQL with psql (unaligned, tuples only) and returns its output; throws with psql's error. */
export async function psql(conn: Conn, sql: string, opts: PsqlOptions = {}): Promise<string> {
  const out = await runOk(pgBinary("psql"), ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], {
    env: libpqEnv(conn),
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  return out.replace(/\n$/, "");
}

/**
 * What {@link psql} prints for `sql`, run in this process by the wire client (pgwire.ts), for a login that
 * needs no password and no TLS: the superuser over the unix socket ({@link PostgresHandle.psql}). The same
 * simple query psql sends (several statements run in one transaction), the rows of every statement unaligned
 * (`|` between values, NULL empty), as psql 15 prints them, and its error as psql writes it (`ERROR:  …`). psql
 * was a process each time, a few hundred times a test run: 10.3 to 11.5 CPU-ms a `SELECT 1` against 3.5 to
 * 3.8, the backend's included (40 calls each way, twice, 2026-12-07).
 */
async function superuserSql(conn: Conn, sql: string, opts: PsqlOptions = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const c = await PgClient.connect(conn, { timeoutMs, applicationName: "harness" });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        c.close();
        reject(new Error(`harness: SQL on ${conn.host} did not finish within ${timeoutMs} ms: ${sql}`));
      }, timeoutMs);
    });
    const r = await Promise.race([c.query(sql), timeout]);
    // (a row of no column, `SELECT;`, is no line: psql prints its cells, and it has none)
    return r.allRows
      .filter((row) => row.length > 0)
      .map((row) => row.map((v) => v ?? "").join("|"))
      .join("\n");
  } catch (e) {
    if (e instanceof PgError)
      throw new Error(`psql (harness) -c ${JSON.stringify(sql)}: ${e.severity}:  ${e.message}`);
    throw e;
  } finally {
    clearTimeout(timer);
    c.close();
  }
}

/**
 * Runs one query and returns its rows keyed by column name. Works on PgBouncer's admin console too
 * (`SHOW POOLS`), which only speaks the simple query protocol, as psql does.
 */
export async function psqlRows(
  conn: Conn,
  sql: string,
  opts: PsqlOptions = {},
): Promise<Record<string, string>[]> {
  const out = await runOk(
    pgBinary("psql"),
    ["-X", "-A", "-F", "\t", "-P", "footer=off", "-v", "ON_ERROR_STOP=1", "-c", sql],
    { env: libpqEnv(conn), timeoutMs: opts.timeoutMs ?? 30_000 },
  );
  const lines = out.split("\n").filter((l) => l !== "");
  if (lines.length === 0) return [];
  const header = lines[0].split("\t");
  return lines.slice(1).map((l) => {
    const cells = l.split("\t");
    return Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ""]));
  });
}

export interface StartPostgresOptions {
  /** PostgreSQL's `max_connections`. @default 100 (PostgreSQL's own default) */
  readonly maxConnections?: number;
  /** `fsync`; off makes a throwaway cluster fast and CPU-bound. @default false */
  readonly fsync?: boolean;
  /**
   * `synchronous_commit`. On, a commit returns once its WAL is written (to the kernel; with fsync also to
   * disk), so a crash of PostgreSQL's processes (an immediate shutdown, SIGQUIT) loses no committed change
   * even with fsync off; fsync is what a crash of the machine needs. @default the value of `fsync`
   */
  readonly synchronousCommit?: boolean;
  /**
   * The certificate and key PostgreSQL serves with `ssl=on` (copied into the cluster's dir, the key owned by
   * `postgres`, 0600); `false` runs without TLS.
   * @default the harness PKI's server certificate (`harnessPki`), which the rendered ini's
   * `server_tls_ca_file` is rewritten to trust
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string } | false;
  /**
   * TCP logins only over TLS: pg_hba has `hostssl` lines and no `host` line, so a plaintext TCP login is
   * refused. The unix socket stays trust for the superuser. Needs `tls`.
   * @default false: pg_hba as initdb wrote it (`host` scram-sha-256, TLS or not)
   */
  readonly hostsslOnly?: boolean;
}

export interface PostgresHandle {
  /** TCP address clients use: always 127.0.0.1. */
  readonly host: string;
  readonly port: number;
  /** Superuser name; it logs in over the unix socket without a password. */
  readonly superuser: string;
  /** Unix socket directory (inside the temp dir). */
  readonly socketDir: string;
  readonly dataDir: string;
  /** The temp dir holding everything; removed by `stop()`. */
  readonly dir: string;
  readonly maxConnections: number;
  /** The certificate PostgreSQL serves; undefined when started with `tls: false`. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** The superuser's connection over the unix socket. */
  conn(database?: string): Conn;
  /** Runs SQL as the superuser over the unix socket (database `postgres` unless told). */
  psql(sql: string, opts?: PsqlOptions & { database?: string }): Promise<string>;
  /** PID of the postmaster, undefined while it is down. */
  pid(): number | undefined;
  /**
   * Stops the server (`fast`: SIGINT, rolls back and disconnects; `immediate`: SIGQUIT, a crash-like stop)
   * and starts it again on the same port and data directory, after `downMs` and after `whileDown` (what
   * clients do while it is down) have both finished. Resolves once it accepts connections again.
   */
  restart(opts?: { mode?: "fast" | "immediate"; downMs?: number; whileDown?: () => unknown }): Promise<void>;
  /** The server log so far. */
  logs(): string;
  /** Stops the server and removes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

const SUPERUSER = "postgres";

/** pg_hba.conf of a TLS cluster: TLS or nothing over TCP. */
const HBA_TLS_ONLY = [
  "# harness: TCP logins only over TLS (no host lines)",
  "local all all trust",
  "hostssl all all 127.0.0.1/32 scram-sha-256",
  "hostssl all all ::1/128 scram-sha-256",
  "",
].join("\n");

/** How every harness cluster is made: only the superuser, trust on the socket, SCRAM over TCP. */
const INITDB_ARGS = [
  "-U",
  SUPERUSER,
  "--auth-local=trust",
  "--auth-host=scram-sha-256",
  "--encoding=UTF8",
  "--locale=C",
  "--no-sync",
];

/**
 * A fresh cluster's data directory, made by initdb once per machine and PostgreSQL release and copied for
 * every start (a copy costs a third of an initdb). Kept in the system temp dir, keyed by the `postgres
 * --version` and the initdb arguments; made in a temp dir and renamed into place, so that parallel runs
 * never see half of one.
 */
async function clusterTemplate(): Promise<string> {
  const version = (await runOk(pgBinary("postgres"), ["--version"])).trim();
  const key = crypto
    .createHash("sha256")
    .update(`${version}\0${INITDB_ARGS.join(" ")}`)
    .digest("hex");
  const template = path.join(os.tmpdir(), `clipper-harness-pg-template-${key.slice(0, 16)}`);
  if (fs.existsSync(path.join(template, "PG_VERSION"))) return template;
  const work = makeRunDir("harness-pg-template");
  try {
    await runAsUserOk(pgBinary("initdb"), ["-D", path.join(work, "data"), ...INITDB_ARGS], {
      timeoutMs: 60_000,
    });
    try {
      fs.renameSync(path.join(work, "data"), template);
    } catch (e) {
      // another run made it first
      if (!fs.existsSync(path.join(template, "PG_VERSION"))) throw e;
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return template;
}

/**
 * A fresh cluster (a copy of the initdb template) in a mktemp dir, and PostgreSQL 15 started on it as
 * `postgres` on 127.0.0.1 and a free port. Host (TCP) logins use scram-sha-256; the superuser logs in over
 * the unix socket (trust).
 */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresHandle> {
  const postgresBin = pgBinary("postgres");
  runAsIds();
  const maxConnections = opts.maxConnections ?? 100;
  const fsync = opts.fsync ?? false;
  const synchronousCommit = opts.synchronousCommit ?? fsync;
  const dir = makeRunDir("harness-pg");
  const dataDir = path.join(dir, "data");
  const socketDir = path.join(dir, "sock");
  const logFile = path.join(dir, "postgres.log");
  let child: ChildProcess | undefined;
  let port = 0;
  const key = {};
  const tlsDir = path.join(dir, "tls");
  const tlsSource = opts.tls === undefined ? harnessPki().server : opts.tls;
  if (opts.hostsslOnly && !tlsSource) throw new Error("harness: hostsslOnly needs tls");
  const tls = tlsSource
    ? { certFile: path.join(tlsDir, "server.crt"), keyFile: path.join(tlsDir, "server.key") }
    : undefined;
  const tlsArgs = tls
    ? ["-c", "ssl=on", "-c", `ssl_cert_file=${tls.certFile}`, "-c", `ssl_key_file=${tls.keyFile}`]
    : [];
  const pid = () => readPid(path.join(dataDir, "postmaster.pid"));
  track(key, () => [pid()], dir);

  const conn = (database = "postgres"): Conn => ({ host: socketDir, port, user: SUPERUSER, database });

  const boot = async (): Promise<void> => {
    child = spawnAsUser(
      postgresBin,
      [
        "-D",
        dataDir,
        "-p",
        String(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `unix_socket_directories=${socketDir}`,
        "-c",
        `max_connections=${maxConnections}`,
        "-c",
        `fsync=${fsync ? "on" : "off"}`,
        ...(fsync ? [] : ["-c", "full_page_writes=off"]),
        "-c",
        `synchronous_commit=${synchronousCommit ? "on" : "off"}`,
        ...tlsArgs,
      ],
      logFile,
    );
    const started = Date.now();
    const isready = pgBinary("pg_isready");
    while (Date.now() - started < 30_000) {
      if (child.exitCode !== null) {
        throw new Error(`harness: postgres exited ${child.exitCode} at start:\n${tail(logFile)}`);
      }
      // The postmaster writes its state into postmaster.pid (line 8: "ready" once it accepts connections;
      // `pg_ctl start -w` waits on the same): a file read every 10 ms, then pg_isready to confirm.
      if (readOr(path.join(dataDir, "postmaster.pid")).split("\n")[7]?.trim() === "ready") {
        const r = await run(isready, ["-h", socketDir, "-p", String(port), "-d", "postgres"], {
          timeoutMs: 5000,
        });
        if (r.code === 0) return;
      }
      await sleep(10);
    }
    throw new Error(`harness: postgres did not accept connections within 30 s:\n${tail(logFile)}`);
  };

  const shutdown = async (sig: NodeJS.Signals): Promise<void> => {
    if (!child) return;
    const c = child;
    signal(pid(), sig);
    if (!(await within(exited(c), 20_000))) {
      signal(pid(), "SIGKILL");
      await within(exited(c), 5000);
    }
    child = undefined;
  };

  try {
    fs.mkdirSync(socketDir);
    fs.chownSync(socketDir, runAsIds().uid, runAsIds().gid);
    await runOk("cp", ["-a", await clusterTemplate(), dataDir], { timeoutMs: 60_000 });
    if (tlsSource && tls) {
      fs.mkdirSync(tlsDir);
      fs.chownSync(tlsDir, runAsIds().uid, runAsIds().gid);
      writeOwned(tls.certFile, fs.readFileSync(tlsSource.certFile, "utf8"), 0o644);
      writeOwned(tls.keyFile, fs.readFileSync(tlsSource.keyFile, "utf8"), 0o600);
    }
    if (opts.hostsslOnly) writeOwned(path.join(dataDir, "pg_hba.conf"), HBA_TLS_ONLY, 0o600);
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        await boot();
        break;
      } catch (e) {
        // another process may have taken the port between freePort() and the bind
        await shutdown("SIGQUIT");
        if (attempt >= 2 || !/could not bind|Address already in use/.test(tail(logFile))) throw e;
      }
    }
  } catch (e) {
    await shutdown("SIGQUIT");
    untrack(key);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  let stopped = false;
  return {
    host: "127.0.0.1",
    port,
    superuser: SUPERUSER,
    socketDir,
    dataDir,
    dir,
    maxConnections,
    ...(tls ? { tls } : {}),
    conn,
    psql: (sql, o = {}) => superuserSql(conn(o.database), sql, o),
    pid,
    async restart(o = {}) {
      await shutdown(o.mode === "immediate" ? "SIGQUIT" : "SIGINT");
      await Promise.all([sleep(o.downMs ?? 0), Promise.resolve(o.whileDown?.())]);
      await boot();
    },
    logs: () => readOr(logFile),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await shutdown("SIGINT");
      } finally {
        untrack(key);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function tail(file: string, lines = 20): string {
  return readOr(file).split("\n").slice(-lines).join("\n");
}

/**
 * Waits until PostgreSQL runs `n` copies of `sql` (backends in state `active` on that very text, from
 * `pg_stat_activity`), looking every 20 ms for at most `deadlineMs`. Resolves with the milliseconds it
 * waited; throws with the count it last saw. For tests that act on a running query (a cancel): PostgreSQL
 * says when it runs, no fixed wait has to guess.
 */
export async function untilRunning(
  pg: Pick<PostgresHandle, "psql">,
  sql: string,
  n: number,
  deadlineMs = 10_000,
): Promise<number> {
  const started = Date.now();
  const text = sql.replace(/'/g, "''");
  for (;;) {
    const running = Number(
      await pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = '${text}'`),
    );
    if (running >= n) return Date.now() - started;
    if (Date.now() - started > deadlineMs) {
      throw new Error(`PostgreSQL ran ${running} of ${n} "${sql}" after ${deadlineMs} ms`);
    }
    await sleep(20);
  }
}

/** A PostgreSQL serving TLS from a PKI made for it: its CA, and a second CA for a pooler in front of it. */
export interface TlsPostgres {
  /** The run's dir (the PKI's files); removed by `stop`. */
  readonly dir: string;
  /** Signed PostgreSQL's certificate: PgBouncer's `server_tls_ca_file`. */
  readonly postgresCa: TestCa;
  /** Signs the pooler's certificate: what a client verifies PgBouncer against. */
  readonly poolerCa: TestCa;
  readonly postgresCert: IssuedCert;
  readonly poolerCert: IssuedCert;
  readonly pg: PostgresHandle;
  /** Stops PostgreSQL and removes the dir. */
  stop(): Promise<void>;
}

/**
 * Makes a PKI in a new run dir (`prefix`), starts PostgreSQL serving its certificate (`opts` as for
 * `startPostgres`, `tls` set here; `postgresNames`, the SANs of PostgreSQL's certificate, by default
 * localhost and 127.0.0.1), and runs `setup` on it; on any failure everything started is stopped
 * and removed before the error goes on. `opts.postgresCa` signs PostgreSQL's certificate instead of a CA
 * made here (a CA someone else holds: the e2e's live `postgres-ca`); it is not removed.
 */
export async function startTlsPostgres<T extends object>(
  prefix: string,
  opts: Omit<StartPostgresOptions, "tls"> & {
    readonly postgresNames?: Pick<IssueOptions, "dnsNames" | "ipAddresses">;
    readonly postgresCa?: TestCa;
  },
  setup: (w: TlsPostgres) => Promise<T>,
): Promise<TlsPostgres & T> {
  const { postgresNames, postgresCa: givenCa, ...pgOpts } = opts;
  const dir = makeRunDir(prefix);
  let pg: PostgresHandle | undefined;
  const stop = async () => {
    try {
      await pg?.stop();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    // openssl off the event loop: a fleet's balancer in this process serves other tests' connections meanwhile
    const [postgresCa, poolerCa] = await Promise.all([
      givenCa ?? makeTestCaAsync(dir, `${prefix}-postgres-ca`),
      makeTestCaAsync(dir, `${prefix}-pooler-ca`),
    ]);
    // A given CA's folder is shared: the certificate's files take this run's name there.
    const postgresFile = givenCa ? `postgres-${path.basename(dir)}` : "postgres";
    const [postgresCert, poolerCert] = await Promise.all([
      postgresNames
        ? issueCertAsync(postgresCa, { commonName: "postgres", fileName: postgresFile, ...postgresNames })
        : issueLocalCertAsync(postgresCa, "postgres", postgresFile),
      issueLocalCertAsync(poolerCa, "pooler"),
    ]);
    pg = await startPostgres({
      ...pgOpts,
      tls: { certFile: postgresCert.certFile, keyFile: postgresCert.keyFile },
    });
    const w: TlsPostgres = { dir, postgresCa, poolerCa, postgresCert, poolerCert, pg, stop };
    return { ...w, ...(await setup(w)) };
  } catch (e) {
    await stop();
    throw e;
  }
}
