import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { PGBOUNCER_RELEASE } from "../../../components/pgbouncer";
import {
  DEBIAN_PGBOUNCER_BIN,
  binaryVersion,
  type Conn,
  type PgBouncerHandle,
  type PostgresHandle,
  authFileText,
  harnessIni,
  localPgBouncerVersion,
  psql,
  psqlRows,
  scramSecret,
  startPgBouncer,
  startPostgres,
  localRewrites,
} from "../../harness";
import { runAsIds } from "../../harness/proc";
import { loadStackSettings } from "../../../stacks/settings";

describe("harness: a real PgBouncer from the rendered prod ini in front of a real PostgreSQL", function () {
  this.timeout(60_000);
  const settings = loadStackSettings("prod");
  const appUser = "clipper_app";
  const appPassword = "app-secret-1";
  const statsPassword = "stats-secret-1";
  let pg: PostgresHandle;
  let bouncer: PgBouncerHandle;
  let app: Conn;
  let stats: Conn;
  let dirs: string[] = [];

  before(async () => {
    pg = await startPostgres();
    await pg.psql(`CREATE ROLE ${appUser} LOGIN PASSWORD '${appPassword}'`);
    await pg.psql(`CREATE DATABASE ${settings.database.name} OWNER ${appUser}`);
    const appSecret = await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${appUser}'`);
    assert.match(appSecret, /^SCRAM-SHA-256\$/);
    bouncer = await startPgBouncer({
      authFile: authFileText([
        { user: appUser, secret: appSecret },
        { user: settings.exporter.statsUser, secret: scramSecret(statsPassword) },
      ]),
      ini: (f) => harnessIni(settings, { type: settings.credentials.authType }, localRewrites(f, pg)),
    });
    dirs = [pg.dir, bouncer.files[0].dir];
    app = {
      host: bouncer.host,
      port: bouncer.port,
      user: appUser,
      database: settings.database.name,
      password: appPassword,
    };
    stats = {
      host: bouncer.host,
      port: bouncer.port,
      user: settings.exporter.statsUser,
      database: "pgbouncer",
      password: statsPassword,
    };
  });

  after(async () => {
    await bouncer?.stop();
    await pg?.stop();
    for (const d of dirs) assert.equal(fs.existsSync(d), false, `${d} was not removed`);
  });

  it("runs as the unprivileged postgres user on loopback, with no group of root's", () => {
    const { uid, gid } = runAsIds();
    for (const pid of [pg.pid(), ...bouncer.pids()]) {
      assert.ok(pid !== undefined);
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
      const field = (name: string) =>
        (new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "").split(/\s+/);
      assert.deepEqual(field("Uid"), [uid, uid, uid, uid].map(String), `process ${pid}'s user`);
      assert.deepEqual(field("Gid"), [gid, gid, gid, gid].map(String), `process ${pid}'s group`);
      assert.ok(!field("Groups").includes("0"), `process ${pid} is in root's group`);
    }
    assert.equal(bouncer.host, "127.0.0.1");
    assert.notEqual(bouncer.port, settings.workload.port, "the harness must not use the fixed pod port");
  });

  it("the superuser's SQL, run in this process, prints what psql prints: every statement's rows, NULL empty, and psql's error", async () => {
    const sql = "SELECT 1, NULL, 'a|b'; SELECT 2 UNION SELECT 3 ORDER BY 1; CREATE TEMP TABLE t (); SELECT";
    assert.equal(await pg.psql(sql), await psql(pg.conn(), sql));
    assert.equal(await pg.psql(sql), "1||a|b\n2\n3");
    const errors = await Promise.all(
      [pg.psql("SELECT nope"), psql(pg.conn(), "SELECT nope")].map((p) =>
        p.then(
          () => "",
          (e: Error) => e.message,
        ),
      ),
    );
    for (const e of errors) assert.match(e, /ERROR: {2}column "nope" does not exist/);
  });

  it("the application user gets through PgBouncer to PostgreSQL (SCRAM secret from pg_authid)", async () => {
    const out = await psql(app, "SELECT 1, current_user, inet_server_port()");
    assert.equal(out, `1|${appUser}|${pg.port}`);
  });

  it("a wrong password is refused by PgBouncer", async () => {
    await assert.rejects(
      psql({ ...app, password: "wrong" }, "SELECT 1"),
      /password authentication failed|SASL/,
    );
  });

  it("the stats user reads SHOW POOLS: one transaction pool for the application user", async () => {
    const pools = await psqlRows(stats, "SHOW POOLS");
    const pool = pools.find((p) => p.database === settings.database.name && p.user === appUser);
    assert.ok(pool, `no pool for ${appUser} in ${JSON.stringify(pools)}`);
    assert.equal(pool.pool_mode, settings.pool.mode);
    assert.equal(pool.pool_mode, "transaction");
  });

  it("PgBouncer runs with the stack's server cap", async () => {
    const config = await psqlRows(stats, "SHOW CONFIG");
    const value = (k: string) => config.find((c) => c.key === k)?.value;
    assert.equal(value("max_db_connections"), String(settings.pool.maxDbConnections));
    assert.equal(value("default_pool_size"), String(settings.pool.defaultPoolSize));
    assert.equal(value("max_client_conn"), String(settings.pool.maxClientConn));
  });

  it("the stats user may not run admin commands", async () => {
    await assert.rejects(psql(stats, "PAUSE"), /admin access needed|not allowed/);
  });

  it("PgBouncer is the release the stacks deploy and runs the prod ini's max_prepared_statements", async () => {
    const version = await localPgBouncerVersion();
    assert.equal(version, settings.workload.version);
    const config = await psqlRows(stats, "SHOW CONFIG");
    const value = config.find((c) => c.key === "max_prepared_statements")?.value;
    assert.equal(value, String(settings.pool.maxPreparedStatements));
  });
});

describe("harness: what PgBouncer does with a unix_socket_dir that does not exist", function () {
  this.timeout(30_000);
  const ini = (f: { port: number; dir: string; pidfile: string; logfile: string; authFile: string }) =>
    [
      "[databases]",
      "clipper = host=127.0.0.1 port=1 dbname=clipper",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${f.port}`,
      `unix_socket_dir = ${f.dir}/missing/1`,
      `pidfile = ${f.pidfile}`,
      `logfile = ${f.logfile}`,
      "auth_type = scram-sha-256",
      `auth_file = ${f.authFile}`,
      "",
    ].join("\n");
  const authFile = authFileText([{ user: "stats", secret: scramSecret("x") }]);

  it(`on ${PGBOUNCER_RELEASE.version} refuses to start; it does not create the directory (a pod must mount it)`, async () => {
    await assert.rejects(
      startPgBouncer({ authFile, ini }),
      /exited at start[\s\S]*cannot listen on unix:.*missing\/1.*No such file or directory[\s\S]*FATAL failed to create unix socket/,
    );
  });

  it("AND Debian's 1.18 only warned and started on TCP", async function () {
    if (binaryVersion(DEBIAN_PGBOUNCER_BIN) !== "1.18.0") this.skip();
    const bouncer = await startPgBouncer({ authFile, ini, bin: DEBIAN_PGBOUNCER_BIN });
    try {
      assert.equal(fs.existsSync(`${bouncer.files[0].dir}/missing/1`), false);
      assert.match(bouncer.logs(), /WARNING cannot listen on unix:.*No such file or directory/);
      assert.equal(bouncer.pids().length, 1);
    } finally {
      await bouncer.stop();
    }
  });
});
