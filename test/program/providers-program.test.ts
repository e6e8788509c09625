/**
 * Explicit providers through the whole program: every resource and invoke of both stacks goes through the
 * stack's own providers (the offline engine refuses a default provider, as the real engine does with
 * `Pulumi.yaml`'s `pulumi:disable-default-providers`), each pinned to the stack's cluster, Vault and
 * Grafana; and a shell set up for another environment is refused before anything is registered.
 */
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { loadStackSettings } from "../../stacks/settings";
import { disabledDefaultProviders } from "../../stacks/stack-file";
import { type OfflineRun, type RecordedResource, runOffline } from "../../testing/engine";
import { isSecretMarker } from "../../testing/manifests";
import { setOfflineMocks } from "../../testing/monitor";
import { offlineVault } from "../../testing/offline-vault";
import { offlineKubeconfig, offlineWorld, stackConfig } from "../../testing/offline-world";

/** The explicit provider of each package, as resources reference it (`urn::id`). */
function providerRefs(run: OfflineRun): Map<string, string> {
  return new Map(
    run.registrations
      .filter((r) => r.type.startsWith("pulumi:providers:"))
      .map((r) => [r.type.slice("pulumi:providers:".length), `${r.urn}::${r.name}-id`]),
  );
}

function providerInputs(run: OfflineRun, pkg: string): Record<string, unknown> {
  const found = run.resources.filter((r) => r.type === `pulumi:providers:${pkg}`);
  assert.strictEqual(found.length, 1, `one ${pkg} provider`);
  return found[0].inputs;
}

describe("the project disables every default provider", () => {
  it("Pulumi.yaml says so", () => {
    assert.deepStrictEqual(disabledDefaultProviders(), ["*"]);
  });

  it("and the offline engine then refuses a resource without an explicit provider, as the engine does", async () => {
    await setOfflineMocks(
      { newResource: (a) => ({ id: "x", state: a.inputs }), call: () => ({}) },
      "clipper-pgbouncer",
      "test",
      false,
      ["*"],
    );
    const cm = new k8s.core.v1.ConfigMap("stray", { data: { a: "b" } });
    // Output's own promise (not in the SDK's types): it rejects with the registration's error.
    const urn = (cm.urn as unknown as { promise(): Promise<string> }).promise();
    await assert.rejects(
      urn,
      /Default provider for 'kubernetes' disabled\. '\S+::stray' must use an explicit provider/,
    );
  });
});

for (const stack of ["staging", "prod"]) {
  describe(`explicit providers, stack ${stack}`, () => {
    const s = loadStackSettings(stack);
    let run: OfflineRun;
    before(async () => {
      run = await runOffline({ stack, vault: offlineVault(stack) });
    });

    it("pins the Kubernetes provider to the stack's context, the kubeconfig read as kubectl reads it", () => {
      const inputs = providerInputs(run, "kubernetes");
      assert.deepStrictEqual(
        { context: inputs.context, kubeconfig: inputs.kubeconfig },
        { context: s.providers.kubernetesContext, kubeconfig: "" },
      );
    });

    it("pins the Vault provider to the stack's Vault, with no token in its inputs", () => {
      const inputs = providerInputs(run, "vault");
      assert.strictEqual(inputs.address, s.providers.vaultAddress);
      assert.ok(!("token" in inputs));
    });

    it("pins the Grafana provider to the stack's Grafana", () => {
      assert.strictEqual(providerInputs(run, "grafana").url, s.providers.grafanaUrl);
    });

    it("sends every resource through its package's explicit provider", () => {
      const refs = providerRefs(run);
      const custom = run.registrations.filter((r) => r.custom && !r.type.startsWith("pulumi:"));
      assert.ok(custom.length > 10, `${custom.length} resources`);
      const strays = custom
        .filter((r) => r.provider !== refs.get(r.type.split(":")[0]))
        .map((r) => `${r.urn} -> ${r.provider ?? "the default provider"}`);
      assert.deepStrictEqual(strays, []);
    });

    it("reads Vault through the stack's Vault provider", () => {
      const vault = providerRefs(run).get("vault");
      assert.ok(run.invokes.length > 0);
      assert.deepStrictEqual(
        run.invokes.filter((i) => i.provider !== vault),
        [],
      );
    });

    it("hands the components their providers (children inherit them)", () => {
      const refs = providerRefs(run);
      const components = run.registrations.filter((r) => !r.custom);
      assert.ok(components.length >= 3);
      for (const c of components) {
        assert.strictEqual(c.providers.kubernetes, refs.get("kubernetes"), c.urn);
      }
    });
  });
}

describe("the Grafana token", () => {
  it("is a Pulumi secret in the Grafana provider's inputs, and only there", async () => {
    const config = stackConfig("prod");
    const world = offlineWorld(config, { env: { GRAFANA_AUTH: "glsa_offline-token" } });
    const run = await runOffline({ stack: "prod", vault: offlineVault("prod"), world });
    const grafana = run.resources.find((r) => r.type === "pulumi:providers:grafana");
    assert.ok(grafana && isSecretMarker(grafana.inputs.auth), JSON.stringify(grafana?.inputs));
    const elsewhere = run.resources.filter((r) => r !== grafana);
    assert.ok(!JSON.stringify(elsewhere.map((r) => r.inputs)).includes("glsa_offline-token"));
  });
});

/** The refusal of a shell set up for another environment: one RunError, nothing registered. */
async function refusedShell(
  world: ReturnType<typeof offlineWorld>,
  message: RegExp,
  config: Record<string, string> = {},
): Promise<void> {
  const record: RecordedResource[] = [];
  await assert.rejects(
    runOffline({ stack: "prod", config, vault: offlineVault("prod"), record, world }),
    (e: unknown) => {
      assert.ok(pulumi.RunError.isInstance(e), String(e));
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, /\n\s+at /);
      return true;
    },
  );
  assert.deepStrictEqual(record, [], "nothing is registered");
}

describe("a prod run from a shell set up for staging", () => {
  const prod = loadStackSettings("prod").providers;
  const staging = loadStackSettings("staging").providers;
  const both = offlineKubeconfig(
    [prod.kubernetesContext, staging.kubernetesContext],
    staging.kubernetesContext,
  );

  it("GIVEN the kubeconfig's current context is staging's THEN it is refused, naming both", () =>
    refusedShell(
      offlineWorld(stackConfig("prod"), { kubeconfig: both }),
      new RegExp(
        `providers\\.kubernetesContext: expects the kubeconfig context "${prod.kubernetesContext}", but the ` +
          `current context of KUBECONFIG=\\S+ is "${staging.kubernetesContext}"`,
      ),
    ));

  it("GIVEN VAULT_ADDR is staging's Vault THEN it is refused, naming both addresses", () =>
    refusedShell(
      offlineWorld(stackConfig("prod"), { env: { VAULT_ADDR: staging.vaultAddress } }),
      new RegExp(
        `providers\\.vaultAddress: expects the Vault at ${prod.vaultAddress.replace(/\./g, "\\.")}, but ` +
          `VAULT_ADDR is ${staging.vaultAddress.replace(/\./g, "\\.")}`,
      ),
    ));

  it("GIVEN a kubeconfig without prod's context THEN it is refused, listing the contexts it has", () =>
    refusedShell(
      offlineWorld(stackConfig("prod"), {
        kubeconfig: offlineKubeconfig([staging.kubernetesContext], staging.kubernetesContext),
      }),
      new RegExp(
        `has no context "${prod.kubernetesContext}" \\(its contexts: ${staging.kubernetesContext}\\)`,
      ),
    ));

  it("GIVEN a default provider's config key in the stack THEN it is refused, saying what replaced it", () => {
    const config = { ...stackConfig("prod"), "vault:address": staging.vaultAddress };
    return refusedShell(
      offlineWorld(config),
      /vault:address: is not read: the program's providers are explicit/,
      {
        "vault:address": staging.vaultAddress,
      },
    );
  });
});
