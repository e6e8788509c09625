/**
 * The shared setup of the TLS tests on the real binaries (tools/test/integration/tls/): a test PKI made by
 * the test (PostgreSQL's CA, the pooler's CA and an unrelated CA), a hostssl-only PostgreSQL 15 serving its
 * own certificate, the application role and database, and PgBouncer started from the stack's rendered ini
 * with its TLS files pointed at the test's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { StackSettings } from "../../../stacks/settings";
import {
  type ClientTls,
  type Conn,
  type HarnessTlsFiles,
  type PgBouncerHandle,
  type TestCa,
  type TlsPostgres,
  LOCAL_NAME,
  authFileText,
  harnessIni,
  localRewrites,
  makeTestCa,
  scramSecret,
  startPgBouncer,
  startTlsPostgres,
} from "../../harness";

export const APP_USER = "clipper_app";
export const APP_PASSWORD = "tls-app-1";
export const STATS_PASSWORD = "tls-stats-1";

export interface TlsWorld extends TlsPostgres {
  /** Signed nothing the servers use. */
  readonly otherCa: TestCa;
  /** The application user's SCRAM secret, as PostgreSQL keeps it (the auth file's line). */
  readonly appSecret: string;
  /** The stack's database. */
  readonly database: string;
}

/**
 * The PKI, PostgreSQL and the application's role and database. `postgresNames`: the SANs of PostgreSQL's
 * certificate (from its CA, the one PgBouncer trusts), by default localhost and 127.0.0.1.
 */
export async function startTlsWorld(
  settings: StackSettings,
  postgresNames?: { readonly dnsNames?: readonly string[]; readonly ipAddresses?: readonly string[] },
): Promise<TlsWorld> {
  return startTlsPostgres(
    "tls-pki",
    {
      maxConnections: settings.database.maxConnections,
      hostsslOnly: true,
      ...(postgresNames ? { postgresNames } : {}),
    },
    async ({ dir, pg }) => {
      const otherCa = makeTestCa(dir, "clipper-test-other-ca");
      await pg.psql(`CREATE ROLE ${APP_USER} LOGIN PASSWORD '${APP_PASSWORD}'`);
      await pg.psql(`CREATE DATABASE ${settings.database.name} OWNER ${APP_USER}`);
      const appSecret = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${APP_USER}'`);
      return { otherCa, appSecret, database: settings.database.name };
    },
  );
}

/** The local files PgBouncer's TLS parameters point at. */
export type PoolerTlsFiles = HarnessTlsFiles;

/**
 * PgBouncer from the stack's rendered ini (the program's renderer; TLS modes and protocols as the stack
 * says), its TLS files rewritten to `files`, in front of `world.pg`.
 * `command` runs it inside another command (the pod's reload script).
 */
export function startTlsPgBouncer(
  world: TlsWorld,
  settings: StackSettings,
  files: PoolerTlsFiles,
  opts: { command?: (bin: string, iniFile: string) => readonly string[] } = {},
): Promise<PgBouncerHandle> {
  return startPgBouncer({
    authFile: authFileText([
      { user: APP_USER, secret: world.appSecret },
      { user: settings.exporter.statsUser, secret: scramSecret(STATS_PASSWORD) },
    ]),
    ini: (f) =>
      harnessIni(settings, { type: settings.credentials.authType }, localRewrites(f, world.pg, files)),
    ...(opts.command ? { command: opts.command } : {}),
  });
}

/** The application user through `bouncer`, verifying it as the backend would (`verify-full`, the pooler CA). */
export function pooledConn(world: TlsWorld, bouncer: PgBouncerHandle, tls?: Partial<ClientTls>): Conn {
  return {
    host: bouncer.host,
    port: bouncer.port,
    user: APP_USER,
    database: world.database,
    password: APP_PASSWORD,
    tls: { sslmode: "verify-full", rootCertFile: world.poolerCa.certFile, hostname: LOCAL_NAME, ...tls },
  };
}

/** PgBouncer's log lines matching `re`. */
export function logLines(bouncer: PgBouncerHandle, re: RegExp): string[] {
  return bouncer
    .logs()
    .split("\n")
    .filter((l) => re.test(l));
}

export function scriptLog(bouncer: PgBouncerHandle): string {
  return fs.readFileSync(path.join(bouncer.files[0].dir, "stderr.log"), "utf8");
}
