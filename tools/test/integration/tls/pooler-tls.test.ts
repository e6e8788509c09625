/**
 * TLS on both legs on the real binaries: the prod ini (client_tls_sslmode require, server_tls_sslmode
 * verify-full) run by PgBouncer 1.25.2 in front of a hostssl-only PostgreSQL 15, with certificates from CAs
 * the test makes. What a backend verifying the pooler sees, each refusal in the words a user reads (libpq's
 * through psql, Node's through the wire client), and prepared statements and cancels with TLS on both legs.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { PGBOUNCER_RELEASE } from "../../../../components/pgbouncer";
import { loadStackSettings } from "../../../../stacks/settings";
import {
  type Conn,
  type PgBouncerHandle,
  LOCAL_NAME,
  PgClient,
  libpqEnv,
  pgBinary,
  psql,
  psqlRows,
  untilRunning,
} from "../../../harness";
import { run, runOk } from "../../../common";
import { initPgbench, runPgbench } from "../../../load/pgbench";
import { PREPARED_RUN } from "../../support/prepared-run";
import {
  APP_USER,
  STATS_PASSWORD,
  type TlsWorld,
  logLines,
  pooledConn,
  startTlsPgBouncer,
  startTlsWorld,
} from "../../support/tls-pooler";

const prod = loadStackSettings("prod");
const ON_SERVER = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
const SLEEP = "SELECT pg_sleep(20)";

describe(`GIVEN PgBouncer ${PGBOUNCER_RELEASE.version} from the prod ini with TLS on both legs, in front of a hostssl-only PostgreSQL 15`, function () {
  this.timeout(90_000);
  let world: TlsWorld;
  let bouncer: PgBouncerHandle;
  let app: Conn;

  before(async () => {
    world = await startTlsWorld(prod);
    bouncer = await startTlsPgBouncer(world, prod, {
      certFile: world.poolerCert.certFile,
      keyFile: world.poolerCert.keyFile,
      serverCaFile: world.postgresCa.certFile,
    });
    app = pooledConn(world, bouncer);
  });
  after(async () => {
    await bouncer?.stop();
    await world?.stop();
  });

  it("THEN the ini asks TLS of clients (require) and verifies PostgreSQL (verify-full) with the server CA", async () => {
    const stats: Conn = {
      ...app,
      user: prod.exporter.statsUser,
      database: "pgbouncer",
      password: STATS_PASSWORD,
    };
    const config = await psqlRows(stats, "SHOW CONFIG");
    const value = (k: string) => config.find((c) => c.key === k)?.value;
    assert.equal(value("client_tls_sslmode"), "require");
    assert.equal(value("server_tls_sslmode"), "verify-full");
    assert.equal(value("client_tls_cert_file"), world.poolerCert.certFile);
    assert.equal(value("client_tls_ca_file"), world.poolerCert.certFile);
    assert.equal(value("server_tls_ca_file"), world.postgresCa.certFile);
  });

  it("THEN a client's handshake lists the pooler's own certificate as the one client CA, not the system's bundle", async () => {
    // PgBouncer below verify-ca still asks for an optional client certificate, naming its client CAs; unset,
    // they were the image's whole system bundle: 143 names, 15.7 KB in every client's handshake, and
    // verified against it. openssl's s_client speaks PostgreSQL's SSLRequest (-starttls postgres).
    const r = await run("openssl", [
      "s_client",
      "-connect",
      `${bouncer.host}:${bouncer.port}`,
      "-starttls",
      "postgres",
      "-CAfile",
      world.poolerCa.certFile,
      "-verify_return_error",
    ]);
    assert.match(r.stdout, /Verification: OK/, r.stdout + r.stderr);
    const names = /Acceptable client certificate CA names\n((?:.+\n)*?)Requested Signature Algorithms/.exec(
      r.stdout,
    );
    assert.ok(names, `no client CA names in the handshake:\n${r.stdout}`);
    const subject = (await runOk("openssl", ["x509", "-noout", "-subject", "-in", world.poolerCert.certFile]))
      .trim()
      .replace(/^subject=\s*/, "");
    const listed = names[1].trim().split("\n");
    const read = Number(/SSL handshake has read (\d+) bytes/.exec(r.stdout)?.[1]);
    console.log(`      client CA names: ${listed.length}; the handshake read ${read} bytes`);
    assert.deepEqual(listed, [subject]);
    assert.ok(read < 4096, `the handshake sent ${read} bytes`);
  });

  it("THEN verify-full through the pooler logs in: the client sees the pooler's certificate, PostgreSQL sees a TLS server connection", async () => {
    assert.match(await psql(app, ON_SERVER), /^t\|TLSv1\.[23]$/);
    const c = await PgClient.connect(app);
    try {
      const r = await c.query(`${ON_SERVER}; SELECT current_user, inet_server_port()`);
      assert.deepEqual(r.rows[0], [APP_USER, String(world.pg.port)]);
      assert.equal(c.peerCertificate?.serialNumber, world.poolerCert.serialNumber);
      assert.equal(c.peerCertificate?.issuer.CN, world.poolerCa.name);
      assert.notEqual(world.poolerCa.name, world.postgresCa.name);
      assert.match(c.tlsProtocol ?? "", /^TLSv1\.[23]$/);
    } finally {
      c.close();
    }
    assert.ok(logLines(bouncer, /S-0x[0-9a-f]+: .* SSL established: TLSv1\.[23]/).length > 0, bouncer.logs());
  });

  it("THEN one CA bundle of both CAs lets a verify-full backend reach the pooler and, rolled back, PostgreSQL", async () => {
    // The runbook's advice for the backend switch: the switch changes DB_HOST/DB_PORT only.
    const bundle = path.join(path.dirname(world.poolerCa.certFile), "backend-bundle.crt");
    fs.writeFileSync(
      bundle,
      fs.readFileSync(world.poolerCa.certFile, "utf8") + fs.readFileSync(world.postgresCa.certFile, "utf8"),
    );
    fs.chmodSync(bundle, 0o644);
    const tls = { sslmode: "verify-full", rootCertFile: bundle, hostname: LOCAL_NAME } as const;
    const pooled: Conn = { ...pooledConn(world, bouncer), tls };
    const direct: Conn = { ...pooled, host: world.pg.host, port: world.pg.port, tls };
    assert.match(await psql(pooled, "SELECT inet_server_port()"), new RegExp(`^${world.pg.port}$`));
    assert.match(await psql(direct, ON_SERVER), /^t\|TLSv1\.[23]$/);
  });

  it("THEN a plaintext client is refused with PgBouncer's 'SSL required'", async () => {
    const plain: Conn = { ...app, tls: { sslmode: "disable" } };
    await assert.rejects(psql(plain, "SELECT 1"), (e: Error) =>
      e.message.includes(`port ${bouncer.port} failed: FATAL:  SSL required`),
    );
    await assert.rejects(PgClient.connect(plain), { message: "SSL required", code: "08P01" });
    assert.ok(logLines(bouncer, /closing because: SSL required/).length >= 2);
  });

  it("THEN a client that verifies against a wrong CA is refused (libpq: certificate verify failed; Node: unable to verify the first certificate)", async () => {
    const wrong: Conn = pooledConn(world, bouncer, { rootCertFile: world.postgresCa.certFile });
    await assert.rejects(psql(wrong, "SELECT 1"), /failed: SSL error: certificate verify failed/);
    // Node 24 appends a hint after the reason ("; if the root CA is installed locally, …")
    await assert.rejects(PgClient.connect(wrong), { message: /^unable to verify the first certificate\b/ });
    assert.ok(logLines(bouncer, /TLS handshake error: .*alert unknown ca/).length > 0, bouncer.logs());
  });

  it("THEN verify-full with a host name outside the pooler certificate's SANs is refused", async () => {
    const wrong: Conn = pooledConn(world, bouncer, { hostname: "pooler.wrong.example" });
    await assert.rejects(
      psql(wrong, "SELECT 1"),
      /server certificate for "localhost" \(and 1 other name\) does not match host name "pooler\.wrong\.example"/,
    );
    await assert.rejects(PgClient.connect(wrong), {
      message:
        "Hostname/IP does not match certificate's altnames: Host: pooler.wrong.example. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1",
    });
  });

  describe("WHEN PostgreSQL's certificate is from another CA than PgBouncer's server_tls_ca_file", () => {
    let wrongCa: PgBouncerHandle;
    before(async () => {
      wrongCa = await startTlsPgBouncer(world, prod, {
        certFile: world.poolerCert.certFile,
        keyFile: world.poolerCert.keyFile,
        serverCaFile: world.otherCa.certFile,
      });
    });
    after(async () => {
      // its clients stay "waiting" after they left (see above): SIGTERM's wait for clients would not end
      await wrongCa?.stop("SIGQUIT");
    });

    it("THEN the client's login never completes (libpq: timeout expired) and PgBouncer logs 'certificate verify failed'", async () => {
      const conn = pooledConn(world, wrongCa);
      const started = Date.now();
      const [libpq, wire] = await Promise.all([
        run(pgBinary("psql"), ["-X", "-A", "-t", "-c", "SELECT 1"], {
          env: { ...libpqEnv(conn), PGCONNECT_TIMEOUT: "3" },
          timeoutMs: 20_000,
        }),
        PgClient.connect(conn, { timeoutMs: 3000 }).then(
          (c) => (c.close(), "logged in"),
          (e: Error) => e.message,
        ),
      ]);
      assert.notEqual(libpq.code, 0);
      assert.match(libpq.stderr, new RegExp(`port ${wrongCa.port} failed: timeout expired`));
      assert.equal(wire, "connection error: timeout expired");
      assert.ok(Date.now() - started < 10_000);
      const refused = logLines(
        wrongCa,
        /WARNING TLS handshake error: handshake failed: error:0A000086:SSL routines::certificate verify failed/,
      );
      assert.ok(refused.length > 0, wrongCa.logs());
      assert.equal(logLines(wrongCa, /S-0x[0-9a-f]+: .* SSL established/).length, 0);
      // what an operator sees: both clients still counted as waiting after they gave up, no server connection
      const stats: Conn = {
        ...conn,
        user: prod.exporter.statsUser,
        database: "pgbouncer",
        password: STATS_PASSWORD,
      };
      const pool = (await psqlRows(stats, "SHOW POOLS")).find((p) => p.database === prod.database.name);
      assert.deepEqual([pool?.cl_waiting, pool?.sv_active, pool?.sv_idle], ["2", "0", "0"]);
    });
  });

  describe("WHEN clients use protocol-level prepared statements (pgbench -M prepared) with TLS on both legs", () => {
    it(`THEN with max_prepared_statements ${prod.pool.maxPreparedStatements}: ${PREPARED_RUN.clients} clients, 0 failed, exit 0, fewer server than client parses`, async () => {
      const direct: Conn = {
        ...app,
        host: world.pg.host,
        port: world.pg.port,
        tls: { sslmode: "verify-full", rootCertFile: world.postgresCa.certFile, hostname: LOCAL_NAME },
      };
      await initPgbench(direct, 1);
      const r = await runPgbench({ conn: app, ...PREPARED_RUN });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.failed, 0);
      assert.equal(r.abortedClients, 0);
      assert.ok(r.transactions > 0);
      const stats: Conn = {
        ...app,
        user: prod.exporter.statsUser,
        database: "pgbouncer",
        password: STATS_PASSWORD,
      };
      const row = (await psqlRows(stats, "SHOW STATS")).find((s) => s.database === prod.database.name);
      assert.ok(row);
      const client = Number(row.total_client_parse_count);
      const server = Number(row.total_server_parse_count);
      assert.ok(
        client >= PREPARED_RUN.clients && server > 0 && server < client,
        JSON.stringify({ client, server }),
      );
      // every server connection PostgreSQL holds from the pooler is TLS
      const plain = await world.pg.psql(
        `SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) ` +
          `WHERE a.usename = '${APP_USER}' AND NOT s.ssl`,
      );
      assert.equal(plain, "0");
    });
  });

  describe("WHEN 16 TLS clients each cancel their running query", () => {
    for (const how of ["plain", "tls"] as const) {
      it(`THEN every cancel sent ${how === "plain" ? "in the clear (libpq's PQcancel, the psql here)" : "inside TLS (libpq 17's PQcancelCreate)"} is delivered: 16 x 57014`, async () => {
        const conns = await Promise.all(
          Array.from({ length: 16 }, () => PgClient.connect({ ...app, tls: { ...app.tls!, cancel: how } })),
        );
        try {
          const started = Date.now();
          const queries = conns.map((c) =>
            c.query(SLEEP).then(
              () => "completed",
              (e: { code?: string }) => e.code ?? "?",
            ),
          );
          // PgBouncer drops a cancel for a query still queued for a server: cancel once all 16 run
          await untilRunning(world.pg, SLEEP, conns.length);
          const outcomes = await Promise.all(
            conns.map(async (c, i) => {
              const sentIn = await c.cancel(app);
              return `${await queries[i]} ${sentIn ?? "plain"}`;
            }),
          );
          const expected = `57014 ${how === "tls" ? (conns[0].tlsProtocol ?? "?") : "plain"}`;
          assert.deepEqual(outcomes, Array<string>(16).fill(expected));
          assert.ok(Date.now() - started < 15_000);
        } finally {
          for (const c of conns) c.close();
        }
      });
    }
  });
});
