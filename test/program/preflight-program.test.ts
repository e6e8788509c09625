/**
 * The preflight through the whole program (issue 27, item 8): every object a stack names but does not own
 * (the pooler's namespace, PostgreSQL's CA, an existing certificate's Secret, the backend's ConfigMap and
 * Deployment, Vault's PKI mount and role) is read before anything but the Vault provider is registered, and
 * each one missing is named, with its setting and what the stack needs it for, in one message.
 */
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { ClusterReadError } from "../../components/providers";
import { loadStackSettings } from "../../stacks/settings";
import { CONFIG_NAMESPACE, rawStackConfig, stackFileConfig } from "../../stacks/stack-file";
import { type RecordedResource, type VaultPaths, runOffline } from "../../testing/engine";
import { offlinePki, offlineVault } from "../../testing/offline-vault";
import { type OfflineWorldOptions, offlineWorld, stackConfig } from "../../testing/offline-world";

const prod = loadStackSettings("prod");
const staging = loadStackSettings("staging");

/** A stack's config with whole fields of sections replaced. */
function configWith(stack: string, patch: Record<string, Record<string, unknown>>): Record<string, string> {
  const raw = rawStackConfig(stackFileConfig(stack));
  return Object.fromEntries(
    Object.entries(patch).map(([section, fields]) => [
      `${CONFIG_NAMESPACE}:${section}`,
      JSON.stringify({ ...((raw[section] as object) ?? {}), ...fields }),
    ]),
  );
}

interface Case {
  readonly stack?: string;
  readonly config?: Record<string, string>;
  readonly world?: OfflineWorldOptions;
  readonly vaultPaths?: VaultPaths;
}

/** The run is refused with one RunError matching every pattern; nothing but the Vault provider registered. */
async function refused(c: Case, ...patterns: RegExp[]): Promise<string> {
  const stack = c.stack ?? "prod";
  const config = c.config ?? {};
  const record: RecordedResource[] = [];
  let message = "";
  await assert.rejects(
    runOffline({
      stack,
      config,
      vault: offlineVault(stack, { config }),
      record,
      world: offlineWorld(stackConfig(stack, config), c.world),
      ...(c.vaultPaths ? { vaultPaths: c.vaultPaths } : {}),
    }),
    (e: unknown) => {
      assert.ok(pulumi.RunError.isInstance(e), String(e));
      message = e.message;
      for (const p of patterns) assert.match(e.message, p);
      assert.doesNotMatch(e.message, /\n\s+at /, "no stack trace");
      return true;
    },
  );
  assert.deepStrictEqual(
    record.map((r) => r.type),
    ["pulumi:providers:vault"],
    "nothing registered but the Vault provider",
  );
  return message;
}

const CLUSTER = /in the cluster of the offline context \(https:\/\/kubernetes\.offline\.invalid:6443\)/;

describe("the preflight: what a stack names but does not own, checked before anything is registered", () => {
  it("GIVEN prod's CA ConfigMap missing THEN it names it, its setting and why the pods need it", () =>
    refused(
      { world: { missing: ["ConfigMap clipper/postgres-ca"] } },
      /^the stack names an object it does not own that is not there as it needs it; nothing was created:\n/,
      /  - ConfigMap clipper\/postgres-ca \(clipper-pgbouncer:tls\.serverCa\.name\): does not exist in the cluster/,
      /and the pooler's pods mount it \(PostgreSQL's CA\) and cannot start without it; create it, or name another/,
      CLUSTER,
    ));

  it("GIVEN the CA ConfigMap without its key THEN it names the key and the keys it has", () =>
    refused(
      {
        world: {
          cluster: {
            describe: "the cluster of the offline context",
            get: (path) =>
              Promise.resolve(
                path.endsWith("/configmaps/postgres-ca")
                  ? { data: { "root.pem": "x" } }
                  : { data: {}, metadata: { name: path } },
              ),
          },
        },
      },
      /ConfigMap clipper\/postgres-ca \(clipper-pgbouncer:tls\.serverCa\.name\): has no key "ca\.crt" \(its keys: root\.pem\)/,
    ));

  it("GIVEN a CA held in a Secret that is missing THEN it names the Secret", () =>
    refused(
      {
        config: configWith("prod", {
          tls: { serverCa: { source: "secret", name: "postgres-tls", key: "ca.pem" } },
        }),
        world: { missing: ["Secret clipper/postgres-tls"] },
      },
      /Secret clipper\/postgres-tls \(clipper-pgbouncer:tls\.serverCa\.name\): does not exist/,
    ));

  it("GIVEN an existing certificate's Secret missing THEN it names it", () =>
    refused(
      {
        config: configWith("prod", { tls: { certificate: { source: "secret", name: "pgbouncer-cm" } } }),
        world: { missing: ["Secret clipper/pgbouncer-cm"] },
      },
      /Secret clipper\/pgbouncer-cm \(clipper-pgbouncer:tls\.certificate\.name\): does not exist .*the certificate they serve/,
    ));

  for (const s of [prod, staging]) {
    const stack = s === prod ? "prod" : "staging";
    const ns = s.backend.namespace ?? s.namespace;
    it(`${stack}: GIVEN the backend's ConfigMap missing THEN it names it`, () =>
      refused(
        { stack, world: { missing: [`ConfigMap ${ns}/${s.backend.configMapName}`] } },
        new RegExp(
          `ConfigMap ${ns}/${s.backend.configMapName} \\(clipper-pgbouncer:backend\\.configMapName\\): does not ` +
            `exist .*the backend switch sets its DB_HOST/DB_PORT`,
        ),
      ));

    it(`${stack}: GIVEN the backend's Deployment missing THEN it names it`, () =>
      refused(
        { stack, world: { missing: [`Deployment ${ns}/${s.backend.deploymentName}`] } },
        new RegExp(
          `Deployment ${ns}/${s.backend.deploymentName} \\(clipper-pgbouncer:backend\\.deploymentName\\)`,
        ),
      ));

    it(`${stack}: GIVEN Vault's PKI role missing THEN it names the mount and role`, () => {
      const c = s.tls.certificate;
      assert.ok(c?.source === "vault-pki");
      const pki = offlinePki(stackConfig(stack));
      return refused(
        { stack, vaultPaths: (path) => (path.includes("/roles/") ? undefined : pki(path)) },
        new RegExp(
          `Vault PKI mount "${c.mount}" role "${c.role}" \\(clipper-pgbouncer:tls\\.certificate\\.role\\): could not ` +
            `be read from the Vault at ${s.providers.vaultAddress.replace(/\./g, "\\.")} \\(no secret found at ` +
            `"${c.mount}/roles/${c.role}"\\): the role does not exist, or the Vault token may not read ${c.mount}/roles/${c.role}`,
        ),
      );
    });

    it(`${stack}: GIVEN no PKI engine at the mount THEN it names the mount`, () =>
      refused(
        { stack, vaultPaths: () => undefined },
        /Vault PKI mount "pki" \(clipper-pgbouncer:tls\.certificate\.mount\): could not be read .*there is no PKI engine at pki/,
      ));
  }

  it("GIVEN the pooler's namespace missing THEN it names the namespace, not each object in it", async () => {
    const message = await refused(
      { world: { missing: ["Namespace clipper"] } },
      /Namespace clipper \(clipper-pgbouncer:namespace\): does not exist/,
    );
    assert.doesNotMatch(message, /ConfigMap clipper\//);
  });

  it("GIVEN the cluster unreachable THEN one problem names the cluster, the reason and the objects not checked", async () => {
    const message = await refused(
      {
        world: {
          cluster: {
            describe: 'the cluster of context "clipper-prod" (https://127.0.0.1:1)',
            get: () => Promise.reject(new ClusterReadError("connect ECONNREFUSED 127.0.0.1:1")),
          },
        },
      },
      /the cluster of context "clipper-prod" \(https:\/\/127\.0\.0\.1:1\) \(clipper-pgbouncer:providers\.kubernetesContext\): could not be read \(connect ECONNREFUSED 127\.0\.0\.1:1\)/,
      /ConfigMap clipper\/postgres-ca, ConfigMap clipper\/backend-config, Deployment clipper\/clipper-backend/,
    );
    assert.strictEqual(message.split("\n  - ").length - 1, 1, message);
  });

  it("GIVEN the credentials' objects refused (HTTP 403) THEN it says which permission the context needs", () =>
    refused(
      {
        world: {
          cluster: {
            describe: "the cluster",
            get: (path) =>
              path.includes("/secrets/") || path.includes("/deployments/")
                ? Promise.reject(new ClusterReadError("HTTP 403: forbidden", 403))
                : Promise.resolve({ data: { "ca.crt": "x" } }),
          },
        },
      },
      /Deployment clipper\/clipper-backend .*could not be read from the cluster \(HTTP 403: forbidden\); the context's credentials need get on deployments in clipper/,
    ));

  it("GIVEN several missing THEN one message lists each", async () => {
    const message = await refused(
      {
        world: { missing: ["ConfigMap clipper/postgres-ca", "Deployment clipper/clipper-backend"] },
        vaultPaths: (path) => (path.includes("/roles/") ? undefined : offlinePki(stackConfig("prod"))(path)),
      },
      /^the stack names 3 objects it does not own that are not there as it needs them/,
    );
    assert.strictEqual(message.split("\n  - ").length - 1, 3, message);
  });
});

describe("the preflight's Vault reads when the Vault provider cannot set up its client", () => {
  /** What the Vault provider answers every read with when no Vault answers at its address. */
  const lookupFailed =
    'failed to lookup token, err=Put "https://127.0.0.1:1/v1/auth/token/lookup-self": dial tcp 127.0.0.1:1: connect: connection refused';

  /** Runs staging (server CA from a ConfigMap, a PKI certificate) with Vault answering `answer`; counts reads. */
  async function run(answer: () => never): Promise<{ reads: string[]; message: string }> {
    const reads: string[] = [];
    let message = "";
    await assert.rejects(
      runOffline({
        stack: "staging",
        vault: (mount, name) => {
          reads.push(`${mount}/${name}`);
          return answer();
        },
        vaultPaths: (path) => {
          reads.push(path);
          return answer();
        },
        world: offlineWorld(stackConfig("staging", {})),
      }),
      (e: unknown) => {
        assert.ok(pulumi.RunError.isInstance(e), String(e));
        message = e.message;
        return true;
      },
    );
    return { reads, message };
  }

  const fail = (m: string) => (): never => {
    throw Object.assign(new Error(m), { details: m });
  };

  it("GIVEN Vault unreachable THEN the credentials' read is the only one (each would wait out its own retries) and one refusal names the address", async () => {
    const { reads, message } = await run(fail(lookupFailed));
    assert.deepStrictEqual(reads, [`${staging.credentials.vaultMount}/${staging.credentials.vaultPath}`]);
    assert.match(message, /could not be read from the Vault at .*failed to lookup token/);
    assert.doesNotMatch(message, /PKI/, "the PKI reads were left out, not reported as failed");
  });

  it("GIVEN Vault answering but every path missing THEN the PKI reads still run and are named", async () => {
    const { reads, message } = await run(fail('error reading from Vault: no secret found at "x"'));
    const c = staging.tls.certificate;
    assert.ok(c?.source === "vault-pki");
    assert.ok(reads.includes(`${c.mount}/roles/${c.role}`), reads.join(", "));
    assert.match(message, /Vault PKI mount "pki"/);
  });
});
