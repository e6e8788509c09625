/**
 * The server leg's host-name check: PostgreSQL serves a certificate from the CA PgBouncer trusts
 * (`server_tls_ca_file`) for another name than the host PgBouncer connects to. The prod ini's
 * `server_tls_sslmode = verify-full` must refuse it, and `verify-ca`, the control, accepts it: without this
 * pair every other TLS test of the server leg would pass under verify-ca too (the harness's certificates
 * name 127.0.0.1). What a client sees, and after how long, is measured with `query_wait_timeout` shortened
 * to {@link WAIT_S} s (prod: 120 s); docs/runbook.md's TLS failure table quotes it.
 */
import * as assert from "node:assert/strict";
import { PGBOUNCER_RELEASE } from "../../../../components/pgbouncer";
import { type StackSettings, loadStackSettings } from "../../../../stacks/settings";
import { type Conn, type PgBouncerHandle, PgClient, libpqEnv, pgBinary, psql } from "../../../harness";
import { run } from "../../../common";
import {
  APP_PASSWORD,
  APP_USER,
  type TlsWorld,
  logLines,
  pooledConn,
  startTlsPgBouncer,
  startTlsWorld,
} from "../../support/tls-pooler";

const prod = loadStackSettings("prod");
/** `query_wait_timeout` of these runs: long enough for PgBouncer to retry the server login twice. */
const WAIT_S = 3;
const WRONG_NAME = "postgres.wrong.example";
/** The refusal PgBouncer logs for each server login (libtls's words, PgBouncer 1.25.2 with OpenSSL 3). */
const NAME_REFUSED = /WARNING TLS handshake error: name `127\.0\.0\.1' not present in server certificate/;

function stackWith(serverSslMode: StackSettings["tls"]["serverSslMode"]): StackSettings {
  return {
    ...prod,
    pool: { ...prod.pool, queryWaitTimeoutSeconds: WAIT_S },
    tls: { ...prod.tls, serverSslMode },
  };
}

/** Milliseconds since the epoch of a PgBouncer log line (`2026-01-01 12:00:00.123 UTC [pid] …`). */
function logTime(line: string): number {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) UTC /.exec(line);
  assert.ok(m, `no time in: ${line}`);
  return Date.parse(`${m[1]}T${m[2]}Z`);
}

describe(`GIVEN PostgreSQL 15 serving a certificate from the CA PgBouncer ${PGBOUNCER_RELEASE.version} trusts, for another name than the host it connects to`, function () {
  this.timeout(60_000);
  let world: TlsWorld;

  before(async () => {
    world = await startTlsWorld(prod, { dnsNames: [WRONG_NAME] });
  });
  after(async () => {
    await world?.stop();
  });

  const startPooler = (mode: StackSettings["tls"]["serverSslMode"]) =>
    startTlsPgBouncer(world, stackWith(mode), {
      certFile: world.poolerCert.certFile,
      keyFile: world.poolerCert.keyFile,
      serverCaFile: world.postgresCa.certFile,
    });

  it(`THEN only the name is wrong: libpq verify-ca against that CA logs in, verify-full refuses 127.0.0.1`, async () => {
    const direct = (sslmode: "verify-ca" | "verify-full"): Conn => ({
      host: world.pg.host,
      port: world.pg.port,
      user: APP_USER,
      database: world.database,
      password: APP_PASSWORD,
      tls: { sslmode, rootCertFile: world.postgresCa.certFile },
    });
    assert.equal(await psql(direct("verify-ca"), "SELECT 1"), "1");
    await assert.rejects(
      psql(direct("verify-full"), "SELECT 1"),
      // the other name is the certificate's common name, "postgres"
      /server certificate for "postgres\.wrong\.example" \(and 1 other name\) does not match host name "127\.0\.0\.1"/,
    );
  });

  describe("WHEN PgBouncer runs the prod ini: server_tls_sslmode = verify-full", () => {
    let bouncer: PgBouncerHandle;
    before(async () => {
      bouncer = await startPooler("verify-full");
    });
    after(async () => {
      // its refused clients are gone, but SIGQUIT does not wait for anything
      await bouncer?.stop("SIGQUIT");
    });

    it(`THEN it refuses PostgreSQL at every server login, retrying each server_login_retry; clients wait query_wait_timeout (${WAIT_S} s here) and get 'query_wait_timeout'`, async () => {
      const conn = pooledConn(world, bouncer);
      const started = Date.now();
      const [libpq, wire] = await Promise.all([
        run(pgBinary("psql"), ["-X", "-A", "-t", "-c", "SELECT 1"], {
          // no connect timeout of the client's own: what PgBouncer does decides
          env: { ...libpqEnv(conn), PGCONNECT_TIMEOUT: "0" },
          timeoutMs: 30_000,
        }).then((r) => ({ ...r, ms: Date.now() - started })),
        PgClient.connect(conn, { timeoutMs: 30_000 }).then(
          (c) => (c.close(), { error: "logged in", code: "", ms: Date.now() - started }),
          (e: Error & { code?: string }) => ({ error: e.message, code: e.code, ms: Date.now() - started }),
        ),
      ]);
      const refusals = logLines(bouncer, NAME_REFUSED);
      // PgBouncer counts server_login_retry from an attempt's start (last_connect_time), not its failure:
      // the gaps are between the connections' starts
      const attempts = logLines(bouncer, /S-0x[0-9a-f]+: .* new connection to server/).map(logTime);
      const gaps = attempts.slice(1).map((t, i) => t - attempts[i]);
      console.log(
        `      verify-full, wrong name: psql refused after ${libpq.ms} ms, the wire client after ${wire.ms} ms ` +
          `(query_wait_timeout ${WAIT_S} s); ${refusals.length} server logins refused, begun ${gaps.join(", ")} ms apart`,
      );
      assert.notEqual(libpq.code, 0);
      assert.match(libpq.stderr, new RegExp(`port ${bouncer.port} failed: FATAL:  query_wait_timeout`));
      assert.deepEqual([wire.error, wire.code], ["query_wait_timeout", "08P01"]);
      // PgBouncer checks the wait at its maintenance runs, every 1/3 s; 1 s more for a loaded machine
      for (const ms of [libpq.ms, wire.ms])
        assert.ok(ms >= WAIT_S * 1000 && ms < WAIT_S * 1000 + 1500, `${ms} ms`);
      assert.ok(refusals.length >= 2, bouncer.logs());
      // the last attempt may still be in its handshake when the clients give up
      assert.ok(attempts.length - refusals.length <= 1, bouncer.logs());
      const retry = prod.pool.serverLoginRetrySeconds * 1000;
      // PgBouncer's clock is its event loop's cached time, a few ms behind; the log's, whole milliseconds
      for (const gap of gaps)
        assert.ok(gap >= retry - 10, `a retry begun ${gap} ms after the last: ${bouncer.logs()}`);
      assert.equal(logLines(bouncer, /S-0x[0-9a-f]+: .* SSL established/).length, 0, bouncer.logs());
      assert.equal(logLines(bouncer, /closing because: query_wait_timeout/).length, 2, bouncer.logs());
      assert.equal(
        await world.pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${APP_USER}'`),
        "0",
      );
    });
  });

  describe("WHEN the same ini says server_tls_sslmode = verify-ca (the control)", () => {
    let bouncer: PgBouncerHandle;
    before(async () => {
      bouncer = await startPooler("verify-ca");
    });
    after(async () => {
      await bouncer?.stop("SIGQUIT");
    });

    it("THEN the same certificate is accepted: clients log in, PostgreSQL sees the pooler's TLS connection", async () => {
      const conn = pooledConn(world, bouncer);
      assert.equal(
        await psql(conn, "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"),
        `${APP_USER}|t`,
      );
      assert.ok(logLines(bouncer, /S-0x[0-9a-f]+: .* SSL established/).length > 0, bouncer.logs());
      assert.equal(logLines(bouncer, NAME_REFUSED).length, 0, bouncer.logs());
    });
  });
});
