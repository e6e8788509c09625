import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { VAULT_KV2_READ_TOKEN } from "../../components/credentials/resources";
import { type OfflineRun, type RecordedResource, type VaultSource, runOffline } from "../../testing/engine";
import { redact, toManifest } from "../../testing/manifests";
import { offlineVault, offlineVaultData } from "../../testing/offline-vault";
import { validateManifest } from "../support/k8s-schema";
import { loadStackSettings } from "../../stacks/settings";

/** The offline Vault, and its secret values: canaries that must never show outside a Pulumi secret. */
export function fakeVault(stack: string): { source: VaultSource; values: string[] } {
  const c = loadStackSettings(stack).credentials;
  const data = offlineVaultData(stack);
  return {
    source: offlineVault(stack),
    values: Object.entries(data)
      .filter(([k]) => k !== c.appUserKey)
      .map(([, v]) => v),
  };
}

for (const stack of ["staging", "prod"]) {
  describe(`the program, stack ${stack}`, () => {
    let run: OfflineRun;
    let canaries: string[];
    before(async () => {
      const vault = fakeVault(stack);
      canaries = vault.values;
      run = await runOffline({ stack, vault: vault.source });
    });

    it("exports the backend's DB host and port", () => {
      const ns = loadStackSettings(stack).namespace;
      assert.strictEqual(run.outputs.dbHost, `pgbouncer.${ns}.svc.cluster.local`);
      assert.strictEqual(run.outputs.dbPort, 6432);
    });

    it("reads its Vault secret exactly once, before registering anything", () => {
      const reads = run.calls.filter((c) => c.token === VAULT_KV2_READ_TOKEN);
      const { credentials } = loadStackSettings(stack);
      assert.deepStrictEqual(
        reads.map((c) => [c.inputs.mount, c.inputs.name]),
        [[credentials.vaultMount, credentials.vaultPath]],
      );
    });

    it("registers the pooler's Kubernetes objects", () => {
      const kinds = run.resources.map((r) => r.type);
      for (const t of [
        "clipper:pgbouncer:PgBouncer",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:Secret",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:core/v1:Service",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
      ]) {
        assert.ok(kinds.includes(t), `${t} missing from ${kinds.join(", ")}`);
      }
    });

    it("every Kubernetes object is valid against the Kubernetes OpenAPI schema", () => {
      let checked = 0;
      for (const r of run.resources) {
        const m = toManifest(r);
        if (!m) continue;
        // A …Patch is a server-side apply: it may omit required fields, but what it sets must be valid.
        validateManifest(m, r.type.endsWith("Patch"));
        checked++;
      }
      assert.ok(checked >= 6, `only ${checked} Kubernetes objects`);
    });

    it("no value read from Vault appears unencrypted in any resource input or output", () => {
      assert.ok(canaries.length > 0);
      const visible = JSON.stringify({
        inputs: run.resources.map((r: RecordedResource) => redact(r.inputs)),
        outputs: Object.fromEntries(
          Object.entries(run.outputs).filter(([k]) => !run.secretOutputs.includes(k)),
        ),
      });
      for (const c of canaries) assert.ok(!visible.includes(c), `${c} is visible outside a secret`);
      // …and they did reach the cluster objects, as secrets: both stacks use SCRAM, so the auth file holds
      // verifiers.
      const secret = run.resources.find((r) => r.type === "kubernetes:core/v1:Secret");
      assert.match(JSON.stringify(secret?.inputs), /SCRAM-SHA-256\$4096:/);
    });
  });
}

describe("the program with two PgBouncer processes per pod (prod, cap halved to fit the budget)", () => {
  let run: OfflineRun;
  before(async () => {
    run = await runOffline({
      stack: "prod",
      vault: fakeVault("prod").source,
      config: {
        "clipper-pgbouncer:pgbouncer": JSON.stringify({ replicas: 2, processesPerPod: 2 }),
        "clipper-pgbouncer:pool": JSON.stringify({
          defaultPoolSize: 25,
          minPoolSize: 5,
          maxDbConnections: 25,
        }),
      },
    });
  });

  it("every Kubernetes object is still valid against the schema", () => {
    for (const r of run.resources) {
      const m = toManifest(r);
      if (m) validateManifest(m, r.type.endsWith("Patch"));
    }
  });

  it("the PodMonitor scrapes both exporters", () => {
    const pm = run.resources.find((r) => r.type.endsWith(":PodMonitor"));
    const spec = (pm?.inputs as any).spec;
    assert.deepStrictEqual(
      spec.podMetricsEndpoints.map((e: any) => e.port),
      ["metrics", "metrics-2"],
    );
  });
});

describe("the program under `pulumi preview` (unknown provider outputs)", () => {
  for (const stack of ["staging", "prod"]) {
    it(`${stack}: registers the same resources as an update and exports every output`, async () => {
      const vault = fakeVault(stack).source;
      const up = await runOffline({ stack, vault });
      const preview = await runOffline({ stack, vault, preview: true });
      // The same set: the order of registrations with inputs still to resolve is the runtime's, not ours.
      const names = (run: OfflineRun) => run.resources.map((r) => `${r.type} ${r.name}`).sort();
      assert.deepStrictEqual(names(preview), names(up));
      assert.deepStrictEqual(Object.keys(preview.outputs).sort(), Object.keys(up.outputs).sort());
      assert.strictEqual(preview.outputs.dbPort, 6432);
    });
  }
});

const VAULT_PROVIDER = "pulumi:providers:vault";

/** The program ends a user's mistake with one pulumi.RunError: a message naming the key, and no stack. */
function refusedWith(message: RegExp): (e: unknown) => true {
  return (e) => {
    assert.ok(pulumi.RunError.isInstance(e), `expected a pulumi.RunError, got ${String(e)}`);
    assert.match(e.message, message);
    assert.doesNotMatch(e.message, /\n\s+at /, "the message carries a stack trace");
    return true;
  };
}

describe("the program refuses bad settings before registering anything", () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    [
      "a negative pool size",
      { "clipper-pgbouncer:pool": JSON.stringify({ defaultPoolSize: -1 }) },
      /clipper-pgbouncer:pool\.defaultPoolSize: is -1/,
    ],
    ["an empty namespace", { "clipper-pgbouncer:namespace": "" }, /clipper-pgbouncer:namespace: is ""/],
    [
      "an impossible pool budget",
      { "clipper-pgbouncer:pgbouncer": JSON.stringify({ replicas: 4 }) },
      /pool budget does not fit PostgreSQL: 4 replicas x 1 process\(es\) per pod x \(50 server connections \+ 2 of the server-login check\) per process = 208/,
    ],
  ];
  for (const [what, config, message] of cases) {
    it(what, async () => {
      const record: RecordedResource[] = [];
      await assert.rejects(
        runOffline({ stack: "prod", config, vault: fakeVault("prod").source, record }),
        refusedWith(message),
      );
      assert.deepStrictEqual(record, []);
    });
  }

  it("a missing Vault secret", async () => {
    const record: RecordedResource[] = [];
    await assert.rejects(
      runOffline({ stack: "prod", vault: () => undefined, record }),
      refusedWith(
        /mount "secret" path "clipper\/prod\/pgbouncer": could not be read from the Vault at https:\/\/vault\.prod\.clipper\.example:8200 \(error reading from Vault: no secret found/,
      ),
    );
    assert.deepStrictEqual(
      record.map((r) => r.type),
      [VAULT_PROVIDER],
      "only the Vault provider it read with",
    );
  });

  it("a Vault secret missing a key", async () => {
    const record: RecordedResource[] = [];
    const { source } = fakeVault("prod");
    const missing: VaultSource = (mount, name) => {
      const data = { ...(source(mount, name) as Record<string, string>) };
      delete data.exporter_password;
      return data;
    };
    await assert.rejects(
      runOffline({ stack: "prod", vault: missing, record }),
      refusedWith(
        /path "clipper\/prod\/pgbouncer" key "exporter_password" \(credentials\.statsPasswordKey\): is missing from the secret/,
      ),
    );
    assert.deepStrictEqual(
      record.map((r) => r.type),
      [VAULT_PROVIDER],
      "only the Vault provider it read with",
    );
  });
});
