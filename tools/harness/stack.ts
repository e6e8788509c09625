/**
 * A whole local pooler: PostgreSQL with the stack's database and application user, and PgBouncer started
 * from the stack's rendered ini in front of it. What the tests, the validation tool and the benchmark use.
 */
import * as crypto from "node:crypto";
import {
  type PlainCredentials,
  buildCredentials,
  parseAuthFile,
  vaultKeys,
} from "../../components/credentials";
import type { StackSettings } from "../../stacks/settings";
import { localPgBouncerVersion, pgbouncerBinary } from "./binary";
import { renderIni } from "../../components/pgbouncer";
import { harnessIniInput, localRewrites, withTlsLegs } from "./ini";
import { type PgBouncerHandle, startPgBouncer } from "./pgbouncer";
import { type Conn, type PostgresHandle, startPostgres } from "./postgres";
import { freePort } from "./proc";

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
  /** The stats user's password. @default a random one */
  readonly statsPassword?: string;
  /**
   * TLS between the clients, PgBouncer and PostgreSQL. `rendered`: PgBouncer's two legs as the stack renders
   * them, and the clients' `sslmode` libpq's default (`prefer`); `off`: both legs `disable` in the ini, and
   * the pooled and direct connections `sslmode=disable` (plaintext throughout, as before issue 16; a
   * PostgreSQL started here then runs without `ssl`). @default rendered
   */
  readonly tls?: "rendered" | "off";
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
  /** The credentials the program built from the harness's Vault values (the auth file PgBouncer reads). */
  readonly credentials: PlainCredentials;
  /** Stops PgBouncer, then PostgreSQL (unless it was passed in). */
  stop(): Promise<void>;
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/**
 * The Vault secret the harness stands in for: every key the stack's settings read (`vaultKeys`), with the
 * harness's values.
 */
export function harnessVaultData(
  settings: StackSettings,
  login: {
    user: string;
    password: string;
    statsPassword: string;
    authPassword?: string;
    /** The second login (`credentials.secondLogin`). @default `<user>_b`, a random password */
    secondUser?: string;
    secondPassword?: string;
    /** The user the current login key names. @default `user` */
    current?: string;
  },
): Record<string, string> {
  const secondUser = login.secondUser ?? `${login.user}_b`;
  const values: Record<string, string | undefined> = {
    appUserKey: login.user,
    appPasswordKey: login.password,
    statsPasswordKey: login.statsPassword,
    "authQuery.passwordKey": login.authPassword,
    "secondLogin.userKey": secondUser,
    "secondLogin.passwordKey": login.secondPassword ?? crypto.randomBytes(12).toString("hex"),
    "secondLogin.currentKey": login.current ?? login.user,
  };
  return Object.fromEntries(
    vaultKeys(settings.credentials).map(({ key, setting }) => {
      const v = values[setting];
      if (v === undefined)
        throw new Error(`harness: no value for the Vault key ${key} (credentials.${setting})`);
      return [key, v];
    }),
  );
}

/**
 * The SQL that gives PostgreSQL the application user's password the way the runbook says for the stack's
 * `credentials.authFileSecret`: the password itself (any ordinary way) with `password`; the auth file's own
 * verifier, verbatim, with `verifier` (PgBouncer can then log in only with a client's SCRAM keys).
 */
export function postgresPasswordSql(
  settings: StackSettings,
  authFile: string,
  user: string,
  password: string,
): string {
  const secret =
    settings.credentials.authFileSecret === "password" ? password : (parseAuthFile(authFile).get(user) ?? "");
  return `PASSWORD '${secret.replace(/'/g, "''")}'`;
}

/**
 * Starts PostgreSQL and `settings.workload.processesPerPod` PgBouncer processes from the stack's ini, with
 * the auth file the program builds from the stack's credential settings (file mode, as prod and staging
 * run; Vault answered by the harness). No client logs in before the pooler is handed out: whatever the
 * first login does, the pooler must take it as production would.
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
  const plaintext = opts.tls === "off";
  const pg =
    opts.postgres ??
    (await startPostgres({
      maxConnections: opts.maxConnections ?? settings.database.maxConnections,
      fsync: opts.fsync,
      ...(plaintext ? { tls: false as const } : {}),
    }));
  let bouncer: PgBouncerHandle | undefined;
  try {
    if (settings.credentials.authQuery) {
      throw new Error(
        "harness: the stack is in auth_query mode; the harness runs file mode (prod and staging)",
      );
    }
    const user = opts.appUser ?? HARNESS_APP_USER;
    const dbName = settings.database.name;
    const appPassword = opts.appPassword ?? crypto.randomBytes(12).toString("hex");
    const statsPassword = opts.statsPassword ?? crypto.randomBytes(12).toString("hex");
    const port = await freePort();
    const credentials = buildCredentials(
      settings.credentials,
      { statsUser: settings.exporter.statsUser, pgbouncerPort: port },
      { data: harnessVaultData(settings, { user, password: appPassword, statsPassword }) },
    );
    const exists = await pg.psql(`SELECT 1 FROM pg_roles WHERE rolname = '${user}'`);
    await pg.psql(
      `${exists === "1" ? "ALTER" : "CREATE"} ROLE ${quoteIdent(user)} LOGIN ` +
        postgresPasswordSql(settings, credentials.authFile, user, appPassword),
    );
    if ((await pg.psql(`SELECT 1 FROM pg_database WHERE datname = '${dbName}'`)) !== "1") {
      await pg.psql(`CREATE DATABASE ${quoteIdent(dbName)} OWNER ${quoteIdent(user)}`);
    }
    const processes = settings.workload.processesPerPod;
    let ini0 = "";
    bouncer = await startPgBouncer({
      authFile: credentials.authFile,
      processes,
      port,
      ini: (f) => {
        const input = harnessIniInput(settings, credentials.iniAuth, localRewrites(f, pg));
        const text = renderIni(plaintext ? withTlsLegs(input, { client: false, server: false }) : input);
        if (f.index === 0) ini0 = text;
        return text;
      },
    });
    const b = bouncer;
    const noTls = plaintext ? { tls: { sslmode: "disable" as const } } : {};
    return {
      settings,
      postgres: pg,
      pgbouncer: b,
      ini: ini0,
      version,
      pooled: { host: b.host, port: b.port, user, database: dbName, password: appPassword, ...noTls },
      direct: { host: pg.host, port: pg.port, user, database: dbName, password: appPassword, ...noTls },
      console: {
        host: b.host,
        port: b.port,
        user: settings.exporter.statsUser,
        database: "pgbouncer",
        password: statsPassword,
      },
      credentials,
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
