/**
 * The throwaway PKI's two runners (tools/harness/tls.ts): the same plan run with openssl blocking (what the
 * harness renders with) and off the event loop (what a fleet starts with) makes the same kind of files, and a
 * failed openssl run leaves no temporary file behind either way.
 */
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { issueCert, issueCertAsync, makeTestCa, makeTestCaAsync } from "../../harness/tls";

describe("harness: the test PKI, blocking and not", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "harness-tls-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("GIVEN a CA made either way THEN the certificates issued either way verify against it", async () => {
    const sync = makeTestCa(dir, "sync-ca");
    const async_ = await makeTestCaAsync(dir, "async-ca");
    for (const ca of [sync, async_]) {
      const opts = { commonName: `${ca.name}-server`, dnsNames: ["localhost"] };
      for (const cert of [issueCert(ca, opts), await issueCertAsync(ca, { ...opts, fileName: "other" })]) {
        const x509 = new crypto.X509Certificate(cert.certPem);
        assert.ok(x509.verify(new crypto.X509Certificate(ca.certPem).publicKey));
        assert.equal(x509.checkHost("localhost"), "localhost");
      }
    }
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => /\.(csr|ext)$/.test(f)),
      [],
    );
  });

  it("GIVEN a CA whose key is gone WHEN a certificate is issued THEN openssl's failure is named and no temporary file stays", async () => {
    const ca = makeTestCa(dir, "broken-ca");
    fs.rmSync(ca.keyFile);
    assert.throws(() => issueCert(ca, { commonName: "a" }), /openssl x509 -req failed/);
    await assert.rejects(issueCertAsync(ca, { commonName: "b" }), /openssl x509 -req failed/);
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => /\.(csr|ext)$/.test(f)),
      [],
    );
  });
});
