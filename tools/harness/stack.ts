/**
 * A whole local pooler: PostgreSQL with the stack's database and application user, and PgBouncer started
 * from the stack's rendered ini in front of it. What the tests, the validation tool and the benchmark use.
 */
import * as crypto from "node:crypto";
import type { StackSettings } from "../../stacks/settings";
import { harnessIniInput, localPgBouncerVersion, localRewrites } from "./ini";
import { renderIni } from "../../components/pgbouncer/ini";
import { type PgBouncerHandle, startPgBouncer } from "./pgbouncer";
import { type Conn, type PostgresHandle, startPostgres } from "./postgres";
import { authFileText, scramSecret } from "./scram";

export interface StartPooledStackOptions {
  /** `fsync` of the local PostgreSQL. @default false */
  readonly fsync?: boolean;
  /** PostgreSQL's max_connections. @default the stack's `database.maxConnections` */
  readonly maxConnections?: number;
  /** Where harness adjustments are reported. @default stderr */
  readonly log?: (message: string) => void;
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
  /** What the harness changed beyond paths, address and port (see `harnessIniInput`). */
  readonly adjustments: readonly string[];
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
  const version = await localPgBouncerVersion();
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
    const adjustments: string[] = [];
    let ini0 = "";
    bouncer = await startPgBouncer({
      authFile,
      processes,
      ini: (f) => {
        const { input, adjustments: a } = harnessIniInput(
          settings,
          { type: settings.credentials.authType },
          {
            version,
            ...localRewrites(f, pg),
            processIndex: f.index,
            peerSocketDirs: f.peerSocketDirs,
            log: f.index === 0 ? opts.log : () => undefined,
          },
        );
        const text = renderIni(input);
        if (f.index === 0) {
          ini0 = text;
          adjustments.push(...a);
        }
        return text;
      },
    });
    const b = bouncer;
    return {
      settings,
      postgres: pg,
      pgbouncer: b,
      ini: ini0,
      adjustments,
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
