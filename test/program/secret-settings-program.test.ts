/**
 * Settings given as Pulumi secrets, through the whole program under the mock engine, with the config keys
 * marked secret as the Pulumi CLI marks them (`pulumi.runtime.isConfigSecret`): no value from a secret key
 * reaches a resource input or a stack output in plaintext, and one that would is refused by key.
 */
import * as assert from "assert";
import { type OfflineRun, runOffline } from "../../testing/engine";
import { isSecretMarker } from "../../testing/manifests";
import { offlineVault } from "../../testing/offline-vault";
import { VAULT_PKI_CERT_TYPE } from "../../testing/pki";
import { CONFIG_NAMESPACE, rawStackConfig, stackFileConfig } from "../../stacks/stack-file";

/** Values that stand out wherever they land. */
const S = {
  mount: "pki-mount-5ecret",
  role: "role-5ecret",
  ttl: 1987654,
  caMount: "kv-mount-5ecret",
  caPath: "ca/path-5ecret",
  caKey: "ca-key-5ecret",
  maxConnections: 4321,
};

/** Prod, with its `tls` and `database` sections holding only settings a secret may give, both secret. */
function secretConfig(extra: Record<string, unknown> = {}): Record<string, string> {
  const raw = rawStackConfig(stackFileConfig("prod"));
  return {
    [`${CONFIG_NAMESPACE}:tls`]: JSON.stringify({
      certificate: { mount: S.mount, role: S.role, ttlSeconds: S.ttl },
      serverCa: { source: "vault", mount: S.caMount, path: S.caPath, key: S.caKey },
    }),
    [`${CONFIG_NAMESPACE}:database`]: JSON.stringify({
      maxConnections: S.maxConnections,
      reservedConnections: (raw.database as { reservedConnections: number }).reservedConnections,
      ...extra,
    }),
  };
}
const SECRET_KEYS = [`${CONFIG_NAMESPACE}:tls`, `${CONFIG_NAMESPACE}:database`];

/** Every string and number in `v` outside a Pulumi secret, with where it is. */
function plaintext(v: unknown, where: string, out: [string, string][] = []): [string, string][] {
  if (isSecretMarker(v)) return out;
  if (typeof v === "string" || typeof v === "number") out.push([where, String(v)]);
  else if (Array.isArray(v)) v.forEach((x, i) => plaintext(x, `${where}[${i}]`, out));
  else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) plaintext(x, `${where}.${k}`, out);
  }
  return out;
}

describe("settings given as Pulumi secrets, through the program", () => {
  let run: OfflineRun;
  before(async () => {
    const config = secretConfig();
    run = await runOffline({
      stack: "prod",
      config,
      secretKeys: SECRET_KEYS,
      vault: offlineVault("prod", { config }),
    });
  });

  it("passes the certificate request's mount, role and validity as secrets", () => {
    const cert = run.resources.find((r) => r.type === VAULT_PKI_CERT_TYPE)?.inputs as Record<string, unknown>;
    for (const [field, value] of [
      ["backend", S.mount],
      ["name", S.role],
      ["ttl", String(S.ttl)],
    ] as const) {
      const v = cert[field];
      assert.ok(isSecretMarker(v), `${field}: ${JSON.stringify(v)}`);
      assert.strictEqual(v.value, value);
    }
  });

  it("writes no value from a secret key into any resource input or plain stack output (the check sees them)", () => {
    const values = Object.values(S).map(String);
    const leaks = (found: [string, string][]) =>
      found.filter(([, text]) => values.some((s) => text.includes(s)));
    const inputs = run.resources.flatMap((r) => plaintext(r.inputs, `${r.type} ${r.name}`));
    assert.deepStrictEqual(leaks(inputs), []);
    const outputs = Object.entries(run.outputs).filter(([k]) => !run.secretOutputs.includes(k));
    assert.deepStrictEqual(leaks(plaintext(Object.fromEntries(outputs), "outputs")), []);
    // The same walk finds the values once their secret marker is taken away.
    const cert = run.resources.find((r) => r.type === VAULT_PKI_CERT_TYPE)!;
    const unmarked = Object.fromEntries(
      Object.entries(cert.inputs).map(([k, v]) => [k, isSecretMarker(v) ? v.value : v]),
    );
    assert.strictEqual(leaks(plaintext(unmarked, "cert")).length, 3);
  });

  it("stops before registering anything when a secret would land in the ConfigMap, naming the key", async () => {
    const config = secretConfig({ host: "postgres.db-5ecret.svc" });
    const record: unknown[] = [];
    await assert.rejects(
      runOffline({
        stack: "prod",
        config,
        secretKeys: SECRET_KEYS,
        vault: offlineVault("prod", { config }),
        record: record as never,
      }),
      (e: Error) => {
        assert.match(
          e.message,
          /clipper-pgbouncer:database\.host: is a Pulumi secret .* but pgbouncer\.ini, in the pooler's ConfigMap would hold it in plaintext/,
        );
        assert.doesNotMatch(e.message, /db-5ecret/);
        return true;
      },
    );
    assert.deepStrictEqual(record, []);
  });
});
