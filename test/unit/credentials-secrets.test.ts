import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import {
  MAX_USER_NAME_BYTES,
  SCRAM_ITERATIONS,
  SCRAM_SALT_BYTES,
  authFileLine,
  derivedSalt,
  exporterConnectionString,
  md5Secret,
  parseScramVerifier,
  passwordProblem,
  quoteAuthField,
  scramKeys,
  scramVerifier,
  secretKind,
  userNameProblem,
} from "../../components/credentials";

describe("credentials: SCRAM-SHA-256 verifiers", () => {
  it("match the RFC 7677 example exchange (user, pencil): client proof and server signature", () => {
    // RFC 7677 section 3: the salt and iteration count the server sent, and what the client and server said.
    const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
    const clientFirstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    const serverFirst =
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const clientFinalNoProof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const authMessage = `${clientFirstBare},${serverFirst},${clientFinalNoProof}`;
    const k = scramKeys("pencil", salt, 4096);
    const clientSignature = crypto.createHmac("sha256", k.storedKey).update(authMessage).digest();
    const proof = Buffer.from(k.clientKey.map((b, i) => b ^ clientSignature[i]));
    const serverSignature = crypto.createHmac("sha256", k.serverKey).update(authMessage).digest();
    assert.equal(proof.toString("base64"), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    assert.equal(serverSignature.toString("base64"), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  });

  it("are deterministic for a user and password, in pg_authid form, and parse back", () => {
    const a = scramVerifier("clipper", "correct horse battery");
    assert.equal(a, scramVerifier("clipper", "correct horse battery"));
    const v = parseScramVerifier(a);
    assert.ok(v, a);
    assert.equal(v.iterations, SCRAM_ITERATIONS);
    assert.equal(v.salt.length, SCRAM_SALT_BYTES);
    assert.deepEqual(v.salt, derivedSalt("clipper", "correct horse battery"));
    const keys = scramKeys("correct horse battery", v.salt, v.iterations);
    assert.deepEqual(v.storedKey, keys.storedKey);
    assert.deepEqual(v.serverKey, keys.serverKey);
  });

  it("change with the password (rotation) and with the user (salt)", () => {
    const base = scramVerifier("clipper", "password-one");
    assert.notEqual(scramVerifier("clipper", "password-two"), base);
    assert.notEqual(scramVerifier("clipper2", "password-one"), base);
    assert.notDeepEqual(derivedSalt("clipper2", "password-one"), derivedSalt("clipper", "password-one"));
  });

  it("parse refuses malformed verifiers", () => {
    const good = scramVerifier("u", "p");
    assert.ok(parseScramVerifier(good));
    for (const bad of [
      good.replace("SCRAM-SHA-256$4096", "SCRAM-SHA-256$0"),
      good.slice(0, -4),
      good.replace(/:[^:$]+$/, ":AAAA"),
      "SCRAM-SHA-256$4096:c2FsdA==",
    ]) {
      assert.equal(parseScramVerifier(bad), undefined, bad);
    }
  });
});

describe("credentials: md5 secrets and value kinds", () => {
  it('md5Secret is "md5" + md5(password + user)', () => {
    const expected = "md5" + crypto.createHash("md5").update("s3cretclipper").digest("hex");
    assert.equal(md5Secret("clipper", "s3cret"), expected);
    assert.notEqual(md5Secret("clipper", "s3cret"), md5Secret("clipper2", "s3cret"));
  });

  it("secretKind tells verifiers, md5 hashes and passwords apart", () => {
    assert.equal(secretKind(scramVerifier("u", "p")), "scram-verifier");
    assert.equal(secretKind(md5Secret("u", "p")), "md5-hash");
    assert.equal(secretKind("md5-is-not-a-hash"), "password");
    assert.equal(secretKind("hunter2"), "password");
  });
});

describe("credentials: names and passwords PgBouncer and PostgreSQL can take", () => {
  it("accepts ordinary user names up to 63 bytes", () => {
    for (const ok of ["clipper", "Clipper-App.1", "a".repeat(MAX_USER_NAME_BYTES), "app@svc"]) {
      assert.equal(userNameProblem(ok), undefined, ok);
    }
  });

  it("refuses empty, too long, quoted, whitespace and control-character names", () => {
    assert.match(userNameProblem("") ?? "", /empty/);
    assert.match(userNameProblem("a".repeat(MAX_USER_NAME_BYTES + 1)) ?? "", /64 bytes long.*at most 63/);
    assert.match(userNameProblem("é".repeat(32)) ?? "", /64 bytes/);
    assert.match(userNameProblem('bad"name') ?? "", /double quote/);
    for (const bad of ["two words", "tab\tname", "line\nbreak", "nul\u0000", "del\u007f", "nbsp\u00a0"]) {
      assert.match(userNameProblem(bad) ?? "", /whitespace or a control character/, JSON.stringify(bad));
    }
  });

  it("refuses empty passwords and text outside printable ASCII", () => {
    assert.equal(passwordProblem(`p@ss "w0rd" :/%?#`), undefined);
    assert.match(passwordProblem("") ?? "", /empty/);
    for (const bad of ["trailing\n", "tab\there", "caf\u00e9"]) {
      assert.match(passwordProblem(bad) ?? "", /printable ASCII/, JSON.stringify(bad));
    }
  });

  it("auth file fields double an embedded quote", () => {
    assert.equal(quoteAuthField('a"b'), '"a""b"');
    assert.equal(authFileLine("u", "SCRAM"), '"u" "SCRAM"');
  });

  it("the exporter's connection string URL-encodes user and password", () => {
    const s = exporterConnectionString("stats", "p@ss:/w%rd?#", 6543);
    assert.equal(s, "postgres://stats:p%40ss%3A%2Fw%25rd%3F%23@127.0.0.1:6543/pgbouncer?sslmode=disable");
    const url = new URL(s);
    assert.equal(decodeURIComponent(url.password), "p@ss:/w%rd?#");
    assert.equal(url.port, "6543");
  });
});
