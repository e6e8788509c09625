/**
 * The local PostgreSQL + PgBouncer harness: a real PostgreSQL 15 and the PgBouncer release the stacks
 * deploy, on 127.0.0.1, run as the unprivileged `postgres` user from mktemp dirs, PgBouncer configured by
 * the program's own renderer.
 */
export {
  PG_BIN,
  type ClientTls,
  type Conn,
  type PostgresHandle,
  type PsqlOptions,
  type StartPostgresOptions,
  type TlsPostgres,
  libpqEnv,
  pgBinary,
  psql,
  psqlRows,
  startPostgres,
  startTlsPostgres,
  untilRunning,
} from "./postgres";
export {
  type PgBouncerFiles,
  type PgBouncerHandle,
  type StartPgBouncerOptions,
  startPgBouncer,
} from "./pgbouncer";
export {
  DEBIAN_PGBOUNCER_BIN,
  PATCHED_PGBOUNCER_BIN,
  PEER_POOL_CANCELS_PATCH,
  PROJECT_PGBOUNCER_BIN,
  binaryVersion,
  localPgBouncerVersion,
  patchedPgbouncerBinary,
  pgbouncerBinary,
} from "./binary";
export {
  type HarnessRewrites,
  type HarnessTlsFiles,
  harnessIni,
  harnessIniInput,
  harnessTlsFiles,
  localRewrites,
  withTlsLegs,
} from "./ini";
export { authFileLine, authFileText, scramSecret } from "./scram";
export { exitOnSignals, freePort, makeRunDir, sleep } from "./proc";
export {
  type HarnessPki,
  type IssueOptions,
  type IssuedCert,
  type KubeletTlsDir,
  type SecretFiles,
  type TestCa,
  LOCAL_NAME,
  harnessPki,
  issueCert,
  issueLocalCert,
  kubeletTlsDir,
  makeTestCa,
} from "./tls";
export { PgClient, PgError } from "./pgwire";
export {
  HARNESS_APP_USER,
  type PooledStack,
  type StartPooledStackOptions,
  harnessVaultData,
  postgresPasswordSql,
  startPooledStack,
} from "./stack";
export {
  type LoginOutcome,
  PGBOUNCER_MAINTENANCE_PERIOD_MS,
  REFUSED_PASSWORD,
  abandonLogin,
  adminCommand,
  burst,
  hasServer,
  recoveryAfterOutageMs,
  tryLogin,
  untilServer,
} from "./logins";
