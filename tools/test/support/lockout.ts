/**
 * The shared setup of the login-lockout tests (tools/test/integration/lockout/): the stack in each credential
 * mode, the program's credentials for a password, PostgreSQL's role set as the runbook says for the mode, a
 * fresh PgBouncer, and one PostgreSQL per suite.
 *
 * Two credential modes run: the default (file mode, the password in the auth file) and auth_query mode
 * (auth_user's password in the auth file; the application user's verifier looked up in PostgreSQL), which
 * skips what is about file mode only (the rotation of the auth file, PostgreSQL's password set by hand) and
 * cold-starts two processes only. The verifier rendering (PostgreSQL then holds the auth file's verifier, as
 * the runbook required) locks clients out: control-verifier.test.ts shows on every run that the generated
 * sequences find it, and `CLIPPER_LOCKOUT_MODES=verifier` runs every other test on it by hand.
 */

import * as assert from "node:assert/strict";
import {
  AUTH_QUERY_DEFAULTS,
  type CredentialSettings,
  authQueryFunctionSql,
  buildCredentials,
} from "../../../components/credentials";
import { PGBOUNCER_RELEASE } from "../../../components/pgbouncer";
import type { StackSettings } from "../../../stacks/settings";
import {
  type Conn,
  type LoginOutcome,
  type PgBouncerHandle,
  type PostgresHandle,
  REFUSED_PASSWORD,
  freePort,
  harnessIni,
  harnessVaultData,
  localRewrites,
  postgresPasswordSql,
  startPgBouncer,
  startPostgres,
} from "../../harness";
import { loadStackSettings } from "../../../stacks/settings";

/** How PgBouncer gets the application user's secret. */
export type Mode = "password" | "verifier" | "auth-query";
export const MODES = (process.env.CLIPPER_LOCKOUT_MODES ?? "password,auth-query").split(",") as Mode[];

export const USER = "clipper_app";
export const PASSWORD = "right-Pa55word:/@";
export const STALE = "stale-Pa55word:/@";
export const STATS_PASSWORD = "stats-Pa55word";
export const AUTH_PASSWORD = "auth-Pa55word";

function credentialsOf(mode: Mode, prod: CredentialSettings): CredentialSettings {
  // One application login: the invariant is about logins of one user (a second needs the password mode).
  const one = { ...prod, secondLogin: undefined };
  if (mode !== "auth-query") return { ...one, authFileSecret: mode };
  return { ...one, authQuery: { ...AUTH_QUERY_DEFAULTS } };
}

/** The prod stack in `mode`; `pool` and `workload` as each test needs. */
export function stackWith(
  mode: Mode,
  over: { processes?: number; pool?: Partial<StackSettings["pool"]> } = {},
): StackSettings {
  const prod = loadStackSettings("prod");
  return {
    ...prod,
    workload: { ...prod.workload, processesPerPod: over.processes ?? 1 },
    pool: { ...prod.pool, ...over.pool },
    credentials: credentialsOf(mode, prod.credentials),
  };
}

/** The program's credentials for `password`, and PostgreSQL's role set as the runbook says for the mode. */
/** The last `ALTER ROLE` each PostgreSQL got from {@link credentialsFor}. */
const passwordSet = new WeakMap<PostgresHandle, string>();

async function credentialsFor(pg: PostgresHandle, s: StackSettings, password: string, port: number) {
  const creds = buildCredentials(
    s.credentials,
    { statsUser: s.exporter.statsUser, pgbouncerPort: port },
    {
      data: harnessVaultData(s, {
        user: USER,
        password,
        statsPassword: STATS_PASSWORD,
        authPassword: AUTH_PASSWORD,
      }),
    },
  );
  const sql = `ALTER ROLE ${USER} LOGIN ${postgresPasswordSql(s, creds.authFile, USER, password)}`;
  // Cold starts come by the dozen: set the role only when its password changes.
  if (passwordSet.get(pg) !== sql) {
    await pg.psql(sql);
    passwordSet.set(pg, sql);
  }
  return creds;
}

/** A fresh PgBouncer of `s` with the auth file for `password` (the pod after a start or a roll). */
async function startPooler(
  pg: PostgresHandle,
  s: StackSettings,
  password: string,
  port?: number,
): Promise<PgBouncerHandle> {
  const p = port ?? (await freePort());
  const creds = await credentialsFor(pg, s, password, p);
  return startPgBouncer({
    authFile: creds.authFile,
    processes: s.workload.processesPerPod,
    port: p,
    ini: (f) => harnessIni(s, creds.iniAuth, localRewrites(f, pg)),
  });
}

/** The pooler's TCP address and each process's own unix socket (TCP picks a process at random). */
export function targets(b: PgBouncerHandle, password = PASSWORD): { tcp: Conn; processes: Conn[] } {
  const base = { port: b.port, user: USER, database: "clipper", password };
  return {
    tcp: { ...base, host: b.host },
    processes: b.files.map((f) => ({ ...base, host: f.unixSocketDir })),
  };
}

export function refusedAsWrong(o: LoginOutcome, what: string): void {
  assert.ok(!o.ok, `${what} was let in`);
  assert.match(o.error, REFUSED_PASSWORD, `${what}: ${o.error}`);
}

/** What each lockout test gets: its mode, the stack in it, PgBouncers stopped after every test, PostgreSQL. */
export interface LockoutContext {
  readonly mode: Mode;
  /** File mode (password or verifier); auth_query mode skips the file-mode tests and one-process cold starts. */
  readonly full: boolean;
  stack(over?: Parameters<typeof stackWith>[1]): StackSettings;
  /** A fresh PgBouncer of `s` with the auth file for `password`, stopped after the test. */
  start(s: StackSettings, password: string): Promise<PgBouncerHandle>;
  /** Every PgBouncer started and not stopped yet. */
  readonly running: PgBouncerHandle[];
  /** The suite's PostgreSQL: no committed change lost when its processes crash (synchronous commit). */
  readonly pg: PostgresHandle;
}

/**
 * One `describe` per credential mode of `opts.modes` (`MODES` unless told), with one PostgreSQL for the
 * whole suite, titled `<claim>: <part> (release, mode)`; the claim is the invariant unless told.
 */
export function describeLockout(
  part: string,
  body: (ctx: LockoutContext) => void,
  opts: { readonly modes?: readonly Mode[]; readonly claim?: string } = {},
): void {
  const claim = opts.claim ?? "no client login locks the pooler out";
  for (const mode of opts.modes ?? MODES) {
    describe(`${claim}: ${part} (PgBouncer ${PGBOUNCER_RELEASE.version}, ${mode})`, function () {
      this.timeout(300_000);
      let pg: PostgresHandle | undefined;
      const running: PgBouncerHandle[] = [];
      const ctx: LockoutContext = {
        mode,
        full: mode !== "auth-query",
        stack: (over = {}) => stackWith(mode, over),
        async start(s, password) {
          const b = await startPooler(ctx.pg, s, password);
          running.push(b);
          return b;
        },
        running,
        get pg(): PostgresHandle {
          if (!pg) throw new Error("PostgreSQL is not started yet");
          return pg;
        },
      };

      before(async () => {
        // The tests crash PostgreSQL's processes (immediate shutdown), never the machine: synchronous commit
        // keeps the role's password through them (its WAL is in the kernel before ALTER ROLE returns), fsync
        // would only add the disk's wait to every restart's recovery (measured: 0.5 s against 1 to 4 s).
        pg = await startPostgres({ maxConnections: 200, fsync: false, synchronousCommit: true });
        await pg.psql(`CREATE ROLE ${USER} LOGIN`);
        await pg.psql(`CREATE DATABASE clipper OWNER ${USER}`);
        if (mode === "auth-query") {
          await pg.psql(`CREATE ROLE ${AUTH_QUERY_DEFAULTS.user} LOGIN PASSWORD '${AUTH_PASSWORD}'`);
          await pg.psql(authQueryFunctionSql(AUTH_QUERY_DEFAULTS.user), { database: "clipper" });
        }
      });

      afterEach(async () => {
        for (const b of running.splice(0)) await b.stop("SIGQUIT");
      });

      after(async () => {
        await pg?.stop();
      });

      body(ctx);
    });
  }
}
