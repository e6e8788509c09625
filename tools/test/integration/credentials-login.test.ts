/**
 * The real round trip: the auth file and ini this program renders let a real client log in with SCRAM
 * through a real PgBouncer (the release the stacks deploy) to a real PostgreSQL 15, and a wrong password is refused.
 * Vault is mocked (the invoke answers with the values below); everything after the read is real.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import {
  AUTH_QUERY_DEFAULTS,
  type CredentialSettings,
  type PoolerCredentials,
  authFileLine,
  authQueryFunctionSql,
  md5Secret,
  parseScramVerifier,
  scramKeys,
  scramVerifier,
} from "../../../components/credentials";
import { VAULT_KV2_READ_TOKEN, loadPoolerCredentials } from "../../../components/credentials/resources";
import { PGBOUNCER_RELEASE, socketConnectionString } from "../../../components/pgbouncer";
import { type StackSettings, loadStackSettings } from "../../../stacks/settings";
import { kvV2ReadResult } from "../../../testing/engine";
import {
  type Conn,
  type PgBouncerHandle,
  type PostgresHandle,
  freePort,
  harnessIni,
  psql,
  sleep,
  startPgBouncer,
  startPostgres,
  localRewrites,
} from "../../harness";
import { pgBinary } from "../../harness/postgres";
import { CONFIG_NAMESPACE } from "../../../stacks/stack-file";
import { run } from "../../common";
import { promiseOf } from "../../../testing/outputs";

const APP_USER = "clipper_app";
// Characters that need quoting in a URL and in SQL, so that encoding mistakes show.
const APP_PASSWORD = `app:p@ss/w%rd'#1 "x"`;
const STATS_PASSWORD = `stats p@ss:/%?#&'"`;
const AUTH_PASSWORD = `auth-"lookup"-p@ss'`;

let vaultData: Record<string, string> = {};

/** How PgBouncer (SCRAM) and PostgreSQL word a refused login. */
const REFUSED = /SASL authentication failed|password authentication failed/;

function sqlLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** psql with a libpq URL as its only connection parameter (no PG* variables). */
async function psqlUrl(url: string, sql: string): Promise<{ code: number; out: string; err: string }> {
  const r = await run(pgBinary("psql"), ["-X", "-A", "-t", "-q", "-c", sql, url], {
    env: { PGPASSWORD: "", PGUSER: "", PGHOST: "", PGPORT: "", PGCONNECT_TIMEOUT: "10" },
    timeoutMs: 30_000,
  });
  return { code: r.code, out: r.stdout.trim(), err: r.stderr };
}

/** PgBouncer from the program's own ini (auth from the credentials), on a port chosen before the Vault read. */
async function bouncerFor(
  settings: StackSettings,
  pg: PostgresHandle,
  creds: PoolerCredentials,
  port: number,
  authFileOverride?: string,
): Promise<PgBouncerHandle> {
  return startPgBouncer({
    authFile: authFileOverride ?? (await promiseOf(creds.authFile)),
    port,
    ini: (f) => harnessIni(settings, creds.iniAuth, localRewrites(f, pg)),
  });
}

describe(`credentials: a real login through PgBouncer ${PGBOUNCER_RELEASE.version} to PostgreSQL 15 with the rendered auth file`, function () {
  this.timeout(120_000);
  const stack = loadStackSettings("staging");
  let pg: PostgresHandle;

  before(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs as Record<string, unknown> }),
        call: (args) => {
          if (args.token !== VAULT_KV2_READ_TOKEN) throw new Error(`unexpected call ${args.token}`);
          const { mount, name } = args.inputs as { mount: string; name: string };
          return kvV2ReadResult(mount, name, vaultData);
        },
      },
      CONFIG_NAMESPACE,
      "staging",
      false,
    );
    pg = await startPostgres();
  });

  after(async () => {
    await pg?.stop();
  });

  it("our SCRAM keys equal PostgreSQL's for its own random salt, and our md5 form equals its md5", async () => {
    await pg.psql(`CREATE ROLE keycheck LOGIN PASSWORD ${sqlLiteral(APP_PASSWORD)}`);
    const theirs = parseScramVerifier(
      await pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'keycheck'"),
    );
    assert.ok(theirs);
    const ours = scramKeys(APP_PASSWORD, theirs.salt, theirs.iterations);
    assert.deepEqual(ours.storedKey, theirs.storedKey);
    assert.deepEqual(ours.serverKey, theirs.serverKey);
    await pg.psql(
      `SET password_encryption = 'md5'; ALTER ROLE keycheck PASSWORD ${sqlLiteral(APP_PASSWORD)}`,
    );
    const md5 = await pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'keycheck'");
    assert.equal(md5, md5Secret("keycheck", APP_PASSWORD));
  });

  describe("GIVEN the default: the password in Vault and in the auth file, PostgreSQL's set the ordinary way", () => {
    let bouncer: PgBouncerHandle;
    let creds: PoolerCredentials;
    let app: Conn;

    before(async () => {
      vaultData = {
        app_user: APP_USER,
        app_password: APP_PASSWORD,
        exporter_password: STATS_PASSWORD,
        // prod's second login (credentials.secondLogin), idle: the backends use the first
        app_user_b: `${APP_USER}_b`,
        app_password_b: `${APP_PASSWORD}-b`,
        app_current: APP_USER,
      };
      const port = await freePort();
      creds = await loadPoolerCredentials(stack.credentials, {
        statsUser: stack.exporter.statsUser,
        pgbouncerPort: port,
      });
      assert.equal(creds.iniAuth.type, "scram-sha-256");
      // PostgreSQL hashes it with a salt of its own: PgBouncer logs in with the password, not a verifier.
      await pg.psql(`CREATE ROLE ${APP_USER} LOGIN PASSWORD ${sqlLiteral(APP_PASSWORD)}`);
      await pg.psql(`CREATE DATABASE ${stack.database.name} OWNER ${APP_USER}`);
      bouncer = await bouncerFor(stack, pg, creds, port);
      app = {
        host: bouncer.host,
        port: bouncer.port,
        user: APP_USER,
        database: stack.database.name,
        password: APP_PASSWORD,
      };
    });

    after(async () => {
      await bouncer?.stop();
    });

    it("the auth file holds the application's password, and PostgreSQL a verifier of its own", async () => {
      const text = await promiseOf(creds.authFile);
      assert.ok(text.includes(authFileLine(APP_USER, APP_PASSWORD)), "the password is not in the auth file");
      assert.ok(!text.includes(STATS_PASSWORD), "the stats user's password is in the auth file");
      const stored = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${APP_USER}'`);
      assert.match(stored, /^SCRAM-SHA-256\$/);
      assert.notEqual(stored, scramVerifier(APP_USER, APP_PASSWORD), "PostgreSQL's salt is its own");
    });

    it("PostgreSQL itself accepts the password (direct login)", async () => {
      const out = await psql({ ...app, host: pg.host, port: pg.port }, "SELECT current_user");
      assert.equal(out, APP_USER);
    });

    it("a client logs in with SCRAM through PgBouncer, and PgBouncer logs in to PostgreSQL", async () => {
      const out = await psql(app, "SELECT current_user, inet_server_port()");
      assert.equal(out, `${APP_USER}|${pg.port}`);
    });

    it("a wrong password is refused by PgBouncer", async () => {
      await assert.rejects(psql({ ...app, password: APP_PASSWORD + "x" }, "SELECT 1"), REFUSED);
    });

    it("the exporter's connection string (URL-encoded, over the process's unix socket as the pod has it) opens PgBouncer's console as the stats user", async () => {
      const tcp = await promiseOf(creds.exporterConnectionString);
      const url = socketConnectionString(tcp, bouncer.files[0].unixSocketDir);
      // over TCP (sslmode=disable) PgBouncer asks for TLS: why the exporter uses the unix socket
      const plain = await psqlUrl(tcp, "SHOW USERS");
      assert.notEqual(plain.code, 0);
      assert.match(plain.err, /FATAL: {2}SSL required/);
      const r = await psqlUrl(url, "SHOW USERS");
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`^${stack.exporter.statsUser}\\|`, "m"));
      const wrong = await psqlUrl(url.replace(encodeURIComponent(STATS_PASSWORD), "wrong"), "SHOW USERS");
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.err, REFUSED);
    });
  });

  describe("GIVEN authFileSecret verifier and a SCRAM verifier copied from pg_authid in Vault", () => {
    let bouncer: PgBouncerHandle;
    const user = "clipper_copied";
    const password = "copied-password-7";

    before(async () => {
      await pg.psql(`CREATE ROLE ${user} LOGIN PASSWORD ${sqlLiteral(password)}`);
      await pg.psql(`GRANT CONNECT ON DATABASE ${stack.database.name} TO ${user}`);
      const copied = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${user}'`);
      vaultData = { app_user: user, app_password: copied, exporter_password: STATS_PASSWORD };
      const port = await freePort();
      const creds = await loadPoolerCredentials(
        { ...stack.credentials, authFileSecret: "verifier", secondLogin: undefined },
        {
          statsUser: stack.exporter.statsUser,
          pgbouncerPort: port,
        },
      );
      bouncer = await bouncerFor(stack, pg, creds, port);
    });

    after(async () => {
      await bouncer?.stop();
    });

    it("logs in through PgBouncer when the first login is right; a wrong password is refused", async () => {
      const conn: Conn = {
        host: bouncer.host,
        port: bouncer.port,
        user,
        database: stack.database.name,
        password,
      };
      assert.equal(await psql(conn, "SELECT current_user"), user);
      await assert.rejects(psql({ ...conn, password: "nope" }, "SELECT 1"), REFUSED);
    });
  });

  describe("GIVEN auth_query mode (auth_user looks the application user up; no auth_dbname on 1.18)", () => {
    const query: CredentialSettings = {
      ...stack.credentials,
      authQuery: {
        user: AUTH_QUERY_DEFAULTS.user,
        passwordKey: "auth_password",
        query: AUTH_QUERY_DEFAULTS.query,
      },
    };
    const user = "clipper_lookup";
    const password = "looked-up-password-3";
    let creds: PoolerCredentials;
    let port: number;
    let bouncer: PgBouncerHandle | undefined;

    before(async () => {
      await pg.psql(`CREATE ROLE ${query.authQuery?.user} LOGIN PASSWORD ${sqlLiteral(AUTH_PASSWORD)}`);
      await pg.psql(authQueryFunctionSql(AUTH_QUERY_DEFAULTS.user), { database: stack.database.name });
      await pg.psql(`CREATE ROLE ${user} LOGIN PASSWORD ${sqlLiteral(password)}`);
      vaultData = { auth_password: AUTH_PASSWORD, exporter_password: STATS_PASSWORD };
      port = await freePort();
      creds = await loadPoolerCredentials(query, {
        statsUser: stack.exporter.statsUser,
        pgbouncerPort: port,
      });
    });

    afterEach(async () => {
      await bouncer?.stop();
      bouncer = undefined;
    });

    it("a user absent from the auth file logs in through PgBouncer; a wrong password is refused", async () => {
      const text = await promiseOf(creds.authFile);
      assert.ok(!text.includes(user));
      bouncer = await bouncerFor(stack, pg, creds, port);
      const conn: Conn = {
        host: bouncer.host,
        port: bouncer.port,
        user,
        database: stack.database.name,
        password,
      };
      assert.equal(await psql(conn, "SELECT current_user, inet_server_port()"), `${user}|${pg.port}`);
      await assert.rejects(psql({ ...conn, password: "nope" }, "SELECT 1"), REFUSED);
      const console = await psqlUrl(
        socketConnectionString(
          await promiseOf(creds.exporterConnectionString),
          bouncer.files[0].unixSocketDir,
        ),
        "SHOW USERS",
      );
      assert.equal(console.code, 0, console.err);
    });

    it("a superuser is never served by the lookup function", async () => {
      await pg.psql(`ALTER ROLE postgres PASSWORD ${sqlLiteral("superuser-password-9")}`);
      bouncer = await bouncerFor(stack, pg, creds, port);
      const conn: Conn = {
        host: bouncer.host,
        port: bouncer.port,
        user: "postgres",
        database: stack.database.name,
        password: "superuser-password-9",
      };
      await assert.rejects(psql(conn, "SELECT 1"), /no such user/);
    });

    it("with a verifier instead of auth_user's password, PgBouncer cannot log in to look anyone up", async () => {
      // Why auth_user's entry must hold the password: PostgreSQL holds this very verifier, yet PgBouncer
      // has no client proof to log in with.
      const verifier = scramVerifier(AUTH_QUERY_DEFAULTS.user, AUTH_PASSWORD);
      await pg.psql(`ALTER ROLE ${AUTH_QUERY_DEFAULTS.user} PASSWORD ${sqlLiteral(verifier)}`);
      const text = (await promiseOf(creds.authFile)).replace(
        authFileLine(AUTH_QUERY_DEFAULTS.user, AUTH_PASSWORD),
        authFileLine(AUTH_QUERY_DEFAULTS.user, verifier),
      );
      assert.ok(text.includes(verifier));
      bouncer = await bouncerFor(stack, pg, creds, port, text);
      const conn: Conn = {
        host: bouncer.host,
        port: bouncer.port,
        user,
        database: stack.database.name,
        password,
      };
      const attempt = assert.rejects(psql(conn, "SELECT 1"));
      const why =
        /cannot do SCRAM authentication: password is SCRAM secret but client authentication did not/;
      const started = Date.now();
      while (!why.test(bouncer.logs()) && Date.now() - started < 10_000) await sleep(100);
      assert.match(bouncer.logs(), why);
      // The client would wait for its connect timeout; stopping PgBouncer ends it now.
      await bouncer.stop();
      bouncer = undefined;
      await attempt;
      await pg.psql(`ALTER ROLE ${AUTH_QUERY_DEFAULTS.user} PASSWORD ${sqlLiteral(AUTH_PASSWORD)}`);
    });
  });

  describe("GIVEN auth_query mode with auth_dbname as rendered (the lookup runs in one database; 1.19+)", () => {
    const authDb = "clipper_auth";
    const emptyDb = "clipper_noauth";
    const user = "clipper_lookup_db";
    const password = "looked-up-in-auth-db-5";
    const withDbname = (dbname: string): CredentialSettings => ({
      ...stack.credentials,
      authQuery: {
        user: AUTH_QUERY_DEFAULTS.user,
        passwordKey: "auth_password",
        query: AUTH_QUERY_DEFAULTS.query,
        dbname,
      },
    });
    let port: number;
    let bouncer: PgBouncerHandle | undefined;

    const start = async (dbname: string) => {
      const creds = await loadPoolerCredentials(withDbname(dbname), {
        statsUser: stack.exporter.statsUser,
        pgbouncerPort: port,
      });
      bouncer = await bouncerFor(stack, pg, creds, port);
      return { host: bouncer.host, port: bouncer.port, database: stack.database.name };
    };

    before(async () => {
      const exists = await pg.psql(`SELECT 1 FROM pg_roles WHERE rolname = '${AUTH_QUERY_DEFAULTS.user}'`);
      await pg.psql(
        `${exists === "1" ? "ALTER" : "CREATE"} ROLE ${AUTH_QUERY_DEFAULTS.user} LOGIN PASSWORD ${sqlLiteral(AUTH_PASSWORD)}`,
      );
      for (const db of [authDb, emptyDb]) {
        if ((await pg.psql(`SELECT 1 FROM pg_database WHERE datname = '${db}'`)) !== "1") {
          await pg.psql(`CREATE DATABASE ${db}`);
        }
      }
      await pg.psql(authQueryFunctionSql(AUTH_QUERY_DEFAULTS.user), { database: authDb });
      // the application database must not be where the lookup happens
      await pg.psql("DROP SCHEMA IF EXISTS pgbouncer CASCADE", { database: stack.database.name });
      await pg.psql(`CREATE ROLE ${user} LOGIN PASSWORD ${sqlLiteral(password)}`);
      vaultData = { auth_password: AUTH_PASSWORD, exporter_password: STATS_PASSWORD };
      port = await freePort();
    });

    afterEach(async () => {
      await bouncer?.stop();
      bouncer = undefined;
    });

    it("THEN the rendered ini names auth_dbname and routes it, and a user absent from the auth file logs in", async () => {
      const at = await start(authDb);
      const ini = fs.readFileSync(bouncer?.files[0].iniFile ?? "", "utf8");
      assert.match(ini, new RegExp(`^auth_dbname = ${authDb}$`, "m"));
      assert.match(ini, new RegExp(`^${authDb} = host=${pg.host} port=${pg.port} dbname=${authDb}$`, "m"));
      const conn: Conn = { ...at, user, password };
      assert.equal(
        await psql(conn, "SELECT current_user, current_database()"),
        `${user}|${stack.database.name}`,
      );
      await assert.rejects(psql({ ...conn, password: "nope" }, "SELECT 1"), REFUSED);
    });

    it("THEN a superuser is still refused", async () => {
      await pg.psql(`ALTER ROLE postgres PASSWORD ${sqlLiteral("superuser-password-9")}`);
      const at = await start(authDb);
      await assert.rejects(
        psql({ ...at, user: "postgres", password: "superuser-password-9" }, "SELECT 1"),
        /no such user/,
      );
    });

    it("AND with auth_dbname naming a database without the lookup function the same login fails", async () => {
      const at = await start(emptyDb);
      await assert.rejects(psql({ ...at, user, password }, "SELECT 1"));
      assert.match(bouncer?.logs() ?? "", /pgbouncer\.get_auth|schema "pgbouncer" does not exist/);
    });
  });
});
