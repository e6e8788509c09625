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
  type IssuedCert,
  type PgBouncerHandle,
  type PostgresHandle,
  type TestCa,
  authFileText,
  harnessIni,
  issueCert,
  localRewrites,
  makeRunDir,
  makeTestCa,
  scramSecret,
  startPgBouncer,
  startPostgres,
} from "../../harness";

export const APP_USER = "clipper_app";
export const APP_PASSWORD = "tls-app-1";
export const STATS_PASSWORD = "tls-stats-1";
/** The name clients verify (verify-full) while connecting to 127.0.0.1. */
export const VERIFY_NAME = "localhost";

export interface TlsWorld {
  readonly dir: string;
  /** Signed PostgreSQL's certificate: PgBouncer's `server_tls_ca_file`. */
  readonly postgresCa: TestCa;
  /** Signs the pooler's certificates: what a client verifies PgBouncer against. */
  readonly poolerCa: TestCa;
  /** Signed nothing the servers use. */
  readonly otherCa: TestCa;
  readonly postgresCert: IssuedCert;
  readonly poolerCert: IssuedCert;
  readonly pg: PostgresHandle;
  /** The application user's SCRAM secret, as PostgreSQL keeps it (the auth file's line). */
  readonly appSecret: string;
  /** The stack's database. */
  readonly database: string;
  stop(): Promise<void>;
}

/** A certificate for the pooler or the server: SANs `localhost` and `127.0.0.1`. */
export function localCert(ca: TestCa, commonName: string, fileName = commonName): IssuedCert {
  return issueCert(ca, { commonName, dnsNames: [VERIFY_NAME], ipAddresses: ["127.0.0.1"], fileName });
}

export async function startTlsWorld(settings: StackSettings): Promise<TlsWorld> {
  const dir = makeRunDir("tls-pki");
  let pg: PostgresHandle | undefined;
  try {
    const postgresCa = makeTestCa(dir, "clipper-test-postgres-ca");
    const poolerCa = makeTestCa(dir, "clipper-test-pooler-ca");
    const otherCa = makeTestCa(dir, "clipper-test-other-ca");
    const postgresCert = localCert(postgresCa, "postgres");
    const poolerCert = localCert(poolerCa, "pooler");
    pg = await startPostgres({
      maxConnections: settings.database.maxConnections,
      tls: { certFile: postgresCert.certFile, keyFile: postgresCert.keyFile },
      hostsslOnly: true,
    });
    await pg.psql(`CREATE ROLE ${APP_USER} LOGIN PASSWORD '${APP_PASSWORD}'`);
    await pg.psql(`CREATE DATABASE ${settings.database.name} OWNER ${APP_USER}`);
    const appSecret = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${APP_USER}'`);
    const p = pg;
    return {
      dir,
      postgresCa,
      poolerCa,
      otherCa,
      postgresCert,
      poolerCert,
      pg: p,
      appSecret,
      database: settings.database.name,
      async stop() {
        try {
          await p.stop();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    await pg?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
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
    tls: { sslmode: "verify-full", rootCertFile: world.poolerCa.certFile, hostname: VERIFY_NAME, ...tls },
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
