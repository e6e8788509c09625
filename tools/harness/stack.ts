/**
 * A whole local pooler: PostgreSQL with the stack's database and application user, and PgBouncer started
 * from the stack's rendered ini in front of it. What the tests, the validation tool and the benchmark use.
 */
import * as crypto from "node:crypto";
import type { StackSettings } from "../../stacks/settings";
import { localPgBouncerVersion, pgbouncerBinary } from "./binary";
import { harnessIni, localRewrites } from "./ini";
import { type PgBouncerHandle, startPgBouncer } from "./pgbouncer";
import { type Conn, type PostgresHandle, psql, startPostgres } from "./postgres";
import { authFileText, scramSecret } from "./scram";

export interface StartPooledStackOptions {
  /** `fsync` of the local PostgreSQL. @default false */
  readonly fsync?: boolean;
  /** PostgreSQL's max_connections. @default the stack's `database.maxConnections` */
  readonly maxConnections?: number;
  /** Reuse a running PostgreSQL (the database and user are created if missing). @default start one */
  readonly postgres?: PostgresHandle;
  /**
   * The application user the harness creates (in a stack its name comes from Vault).
   * @default {@link HARNESS_APP_USER}
   */
  readonly appUser?: string;
  /** The application user's password. @default a random one (set on the role every start) */
  readonly appPassword?: string;
}

/** The application user of the local harness. */
export const HARNESS_APP_USER = "clipper_app";

export interface PooledStack {
  readonly settings: StackSettings;
  readonly postgres: PostgresHandle;
  readonly pgbouncer: PgBouncerHandle;
  /** The rendered ini of process 0. */
  readonly ini: string;
  /** The PgBouncer release running (the stack's `pgbouncer.version`). */
  readonly version: string;
  /** The application user through PgBouncer. */
  readonly pooled: Conn;
  /** The application user straight to PostgreSQL over TCP. */
  readonly direct: Conn;
  /** The exporter's stats user on PgBouncer's admin console (database `pgbouncer`). */
  readonly console: Conn;
  /** Stops PgBouncer, then PostgreSQL (unless it was passed in). */
  stop(): Promise<void>;
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/**
 * Starts PostgreSQL and `settings.workload.processesPerPod` PgBouncer processes from the stack's ini. The
 * auth file lists the application user (file mode, as prod and staging run) and the stats user.
 */
export async function startPooledStack(
  settings: StackSettings,
  opts: StartPooledStackOptions = {},
): Promise<PooledStack> {
  const version = await localPgBouncerVersion(pgbouncerBinary());
  if (version !== settings.workload.version) {
    throw new Error(
      `harness: the stack deploys PgBouncer ${settings.workload.version}, the local one is ${version}; ` +
        "the harness runs the stack's own release with its ini unchanged",
    );
  }
  const pg =
    opts.postgres ??
    (await startPostgres({
      maxConnections: opts.maxConnections ?? settings.database.maxConnections,
      fsync: opts.fsync,
    }));
  let bouncer: PgBouncerHandle | undefined;
  try {
    const user = opts.appUser ?? HARNESS_APP_USER;
    const dbName = settings.database.name;
    const appPassword = opts.appPassword ?? crypto.randomBytes(12).toString("hex");
    const statsPassword = crypto.randomBytes(12).toString("hex");
    const exists = await pg.psql(`SELECT 1 FROM pg_roles WHERE rolname = '${user}'`);
    await pg.psql(
      `${exists === "1" ? "ALTER" : "CREATE"} ROLE ${quoteIdent(user)} LOGIN PASSWORD '${appPassword.replace(/'/g, "''")}'`,
    );
    if ((await pg.psql(`SELECT 1 FROM pg_database WHERE datname = '${dbName}'`)) !== "1") {
      await pg.psql(`CREATE DATABASE ${quoteIdent(dbName)} OWNER ${quoteIdent(user)}`);
    }
    // The SCRAM secret copied from pg_authid serves client auth and PgBouncer's login to PostgreSQL.
    const appSecret = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${user}'`);
    const authFile = authFileText([
      { user, secret: appSecret },
      { user: settings.exporter.statsUser, secret: scramSecret(statsPassword) },
    ]);
    const processes = settings.workload.processesPerPod;
    let ini0 = "";
    bouncer = await startPgBouncer({
      authFile,
      processes,
      ini: (f) => {
        const text = harnessIni(settings, { type: settings.credentials.authType }, localRewrites(f, pg));
        if (f.index === 0) ini0 = text;
        return text;
      },
    });
    const b = bouncer;
    // One SCRAM login per process before handing the pooler out. PgBouncer 1.25.2 with SCRAM verifiers
    // in the auth file logs in to PostgreSQL with the keys of a client's SCRAM login; a server
    // connection it starts before any client finished one fails ("password is SCRAM secret but client
    // authentication did not provide SCRAM keys") and every client logging in on that pool is refused
    // with "server login failed: wrong password type". Measured: 2 and 3 of 10 and 12 fresh two-process
    // starts under a 50-client burst, none of 24 with one process (docs/tuning.md).
    for (const f of b.files) {
      await psql(
        { host: f.unixSocketDir, port: b.port, user, database: dbName, password: appPassword },
        "SELECT 1",
      );
    }
    return {
      settings,
      postgres: pg,
      pgbouncer: b,
      ini: ini0,
      version,
      pooled: { host: b.host, port: b.port, user, database: dbName, password: appPassword },
      direct: { host: pg.host, port: pg.port, user, database: dbName, password: appPassword },
      console: {
        host: b.host,
        port: b.port,
        user: settings.exporter.statsUser,
        database: "pgbouncer",
        password: statsPassword,
      },
      async stop() {
        try {
          await b.stop();
        } finally {
          if (!opts.postgres) await pg.stop();
        }
      },
    };
  } catch (e) {
    if (bouncer) await bouncer.stop();
    if (!opts.postgres) await pg.stop();
    throw e;
  }
}
