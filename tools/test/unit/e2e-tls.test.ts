/**
 * The e2e's TLS pieces that need no cluster: the PKI role the world gives the stacks (exactly the Service's
 * four names per stack namespace, nothing else), and the SAN reader the certificate checks use.
 */
import * as assert from "assert";
import { serviceNames } from "../../../components/pgbouncer";
import { loadStackSettings } from "../../../stacks/settings";
import { listStacks } from "../../../stacks/stack-file";
import { pkiRoleBody, pkiRoles } from "../../e2e/fixtures";
import { dnsNames } from "../../e2e/scenarios/runbook/tls";

describe("e2e: the Vault PKI role of the stacks", () => {
  const stacks = listStacks().map((s) => loadStackSettings(s));

  it("is one role, allowed exactly the four Service names of each stack's namespace", () => {
    const roles = pkiRoles(stacks);
    assert.equal(roles.length, 1);
    const [r] = roles;
    assert.equal(r.mount, "pki");
    assert.equal(r.role, "clipper-pgbouncer");
    const want = stacks.flatMap((s) => serviceNames("pgbouncer", s.namespace));
    assert.deepEqual([...r.names].sort(), [...new Set(want)].sort());
    assert.ok(r.names.includes("pgbouncer.clipper.svc.cluster.local"));
    assert.ok(r.names.includes("pgbouncer.clipper-staging.svc.cluster.local"));
    // The short name `pgbouncer` is both namespaces': 4 + 3 names.
    assert.equal(r.names.length, 7);
  });

  it("allows no subdomain, glob, wildcard, localhost, IP or any other name; max_ttl covers the stacks", () => {
    const [r] = pkiRoles(stacks);
    const body = pkiRoleBody(r);
    assert.equal(body.allow_bare_domains, true);
    for (const k of [
      "allow_subdomains",
      "allow_glob_domains",
      "allow_wildcard_certificates",
      "allow_localhost",
      "allow_ip_sans",
      "allow_any_name",
    ]) {
      assert.equal(body[k], false, k);
    }
    const ttl = Math.max(
      ...stacks.map((s) => (s.tls.certificate?.source === "vault-pki" ? s.tls.certificate.ttlSeconds : 0)),
    );
    assert.equal(body.max_ttl, `${ttl}s`);
  });

  it("has no role when no stack issues from Vault PKI", () => {
    const plain = stacks.map((s) => ({
      ...s,
      tls: { ...s.tls, certificate: { source: "secret", name: "x" } },
    }));
    assert.deepEqual(pkiRoles(plain as typeof stacks), []);
  });
});

describe("e2e: dnsNames", () => {
  it("reads node:crypto's subjectAltName, sorted", () => {
    assert.deepEqual(dnsNames("DNS:b.c, DNS:a"), ["a", "b.c"]);
    assert.deepEqual(dnsNames(undefined), []);
  });
  it("refuses anything but DNS names", () => {
    assert.throws(() => dnsNames("DNS:a, IP Address:127.0.0.1"), /only DNS names/);
  });
});
