/**
 * The second leg's far end: a real PostgreSQL 15 that serves its own certificate, from a test CA the test
 * makes, and takes TCP logins only over TLS (pg_hba `hostssl`, no `host` line). Checked with psql (libpq's
 * words) and with the harness's wire client (Node's words), which the pooler tests use.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import {
  type Conn,
  type IssuedCert,
  PgClient,
  type PostgresHandle,
  type TestCa,
  issueCert,
  makeRunDir,
  makeTestCa,
  psql,
  startPostgres,
  untilRunning,
} from "../../../harness";

describe("GIVEN PostgreSQL 15 with ssl=on, its own certificate from a test CA, and only hostssl in pg_hba", function () {
  this.timeout(60_000);
  let dir: string;
  let ca: TestCa;
  let otherCa: TestCa;
  let cert: IssuedCert;
  let pg: PostgresHandle;
  let app: Conn;

  before(async () => {
    dir = makeRunDir("tls-pki");
    ca = makeTestCa(dir, "clipper-test-postgres-ca");
    otherCa = makeTestCa(dir, "clipper-test-other-ca");
    cert = issueCert(ca, {
      commonName: "localhost",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
    });
    pg = await startPostgres({ tls: { certFile: cert.certFile, keyFile: cert.keyFile }, hostsslOnly: true });
    await pg.psql("CREATE ROLE tls_app LOGIN PASSWORD 'tls-app-1'");
    app = {
      host: pg.host,
      port: pg.port,
      user: "tls_app",
      database: "postgres",
      password: "tls-app-1",
      tls: { sslmode: "disable" },
    };
  });
  after(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("THEN the server key is the postgres user's, mode 0600, and pg_hba has no plain host line", () => {
    assert.ok(pg.tls);
    const st = fs.statSync(pg.tls.keyFile);
    assert.equal(st.mode & 0o777, 0o600);
    assert.notEqual(st.uid, 0);
    const hba = fs.readFileSync(`${pg.dataDir}/pg_hba.conf`, "utf8");
    assert.match(hba, /^hostssl all all 127\.0\.0\.1\/32 scram-sha-256$/m);
    assert.doesNotMatch(hba, /^host\s/m);
  });

  it("THEN a plaintext TCP login is refused, in PostgreSQL's words (psql and the wire client)", async () => {
    const refused = `no pg_hba.conf entry for host "127.0.0.1", user "tls_app", database "postgres", no encryption`;
    await assert.rejects(psql(app, "SELECT 1"), (e: Error) => e.message.includes(`FATAL:  ${refused}`));
    await assert.rejects(PgClient.connect(app), { message: refused, code: "28000" });
  });

  it("THEN verify-full against the test CA logs in over TLS, and the server shows the certificate the test issued", async () => {
    const tls = { sslmode: "verify-full", rootCertFile: ca.certFile, hostname: "localhost" } as const;
    const sql = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    assert.match(await psql({ ...app, tls }, sql), /^t\|TLSv1\.[23]$/);
    const c = await PgClient.connect({ ...app, tls });
    try {
      assert.deepEqual((await c.query(sql)).rows[0][0], "t");
      assert.equal(c.peerCertificate?.serialNumber, cert.serialNumber);
      assert.equal(c.peerCertificate?.fingerprint256, cert.fingerprint256);
      assert.equal(c.peerCertificate?.issuer.CN, "clipper-test-postgres-ca");
    } finally {
      c.close();
    }
  });

  it("THEN verify-full against another CA is refused: libpq 'certificate verify failed', Node 'unable to verify the first certificate'", async () => {
    const tls = { sslmode: "verify-full", rootCertFile: otherCa.certFile, hostname: "localhost" } as const;
    await assert.rejects(psql({ ...app, tls }, "SELECT 1"), /failed: SSL error: certificate verify failed/);
    await assert.rejects(PgClient.connect({ ...app, tls }), {
      // Node 24 appends a hint ("; if the root CA is installed locally, try running Node.js with --use-system-ca")
      message: /^unable to verify the first certificate\b/,
    });
  });

  it("THEN the wire client reads its CA file at each connection: one replaced in place counts from the next", async () => {
    // its TLS contexts are kept by the CA's text (harness/pgwire.ts), as libpq reads the file every time
    const file = `${dir}/rotated-ca.crt`;
    const tls = { sslmode: "verify-full", rootCertFile: file, hostname: "localhost" } as const;
    fs.writeFileSync(file, ca.certPem);
    (await PgClient.connect({ ...app, tls })).close();
    fs.writeFileSync(file, otherCa.certPem);
    await assert.rejects(PgClient.connect({ ...app, tls }), {
      message: /^unable to verify the first certificate\b/,
    });
    fs.writeFileSync(file, ca.certPem);
    (await PgClient.connect({ ...app, tls })).close();
  });

  it("THEN verify-full with a name outside the SANs is refused; verify-ca with the same name logs in", async () => {
    const tls = { sslmode: "verify-full", rootCertFile: ca.certFile, hostname: "wrong.example" } as const;
    await assert.rejects(
      psql({ ...app, tls }, "SELECT 1"),
      /server certificate for "localhost" \(and 1 other name\) does not match host name "wrong\.example"/,
    );
    await assert.rejects(PgClient.connect({ ...app, tls }), {
      message:
        "Hostname/IP does not match certificate's altnames: Host: wrong.example. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1",
    });
    assert.equal(await psql({ ...app, tls: { ...tls, sslmode: "verify-ca" } }, "SELECT 1"), "1");
  });

  for (const how of ["plain", "tls"] as const) {
    it(`THEN a cancel request sent ${how === "plain" ? "in the clear (libpq's PQcancel)" : "inside TLS (libpq 17's PQcancelCreate)"} cancels a query of a TLS session`, async () => {
      const c = await PgClient.connect({ ...app, tls: { sslmode: "require", cancel: how } });
      try {
        const started = Date.now();
        const q = c.query("SELECT pg_sleep(20)").then(
          () => "completed",
          (e: { code?: string }) => e.code,
        );
        // a cancel that arrives before the query runs cancels nothing: send it once PostgreSQL runs it
        await untilRunning(pg, "SELECT pg_sleep(20)", 1);
        const sentIn = await c.cancel(app);
        assert.equal(await q, "57014");
        if (how === "tls") assert.match(sentIn ?? "plain", /^TLSv1\.[23]$/);
        else assert.equal(sentIn, undefined);
        assert.ok(Date.now() - started < 10_000);
      } finally {
        c.close();
      }
    });
  }
});
