/**
 * The backend switch through the whole program, run by the offline engine (mock Pulumi runtime, fake
 * Vault): both stacks patch the backend's config and roll it, `backend.route = direct` sends it back to
 * PostgreSQL (the rollback), and the outputs the backend reads are present, the connection URL a secret.
 */
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { DESTROY_GUARD_HOOK, FIELD_MANAGER, ROUTE_ANNOTATION } from "../../components/backend-route";
import { scramVerifier } from "../../components/credentials";
import { stackFileConfig, rawStackConfig } from "../../stacks/stack-file";
import {
  type OfflineRun,
  type RecordedResource,
  type Registration,
  type VaultSource,
  runOffline,
} from "../../testing/engine";
import { isSecretMarker } from "../../testing/manifests";
import { OFFLINE_APP_USER as APP_USER, offlineVault } from "../../testing/offline-vault";
import { loadStackSettings } from "../../stacks/settings";
import { offlineWorld, stackConfig } from "../../testing/offline-world";

/** Characters a URL must escape, so the test sees the encoding. */
const APP_PASSWORD = "p@ss:w/rd?#1";

/** The offline Vault with the application password below; `override` replaces values by key. */
function fakeVault(stack: string, override: Record<string, string> = {}): VaultSource {
  const c = loadStackSettings(stack).credentials;
  return offlineVault(stack, { values: { [c.appPasswordKey]: APP_PASSWORD, ...override } });
}

function only(run: OfflineRun, type: string): RecordedResource {
  const found = run.resources.filter((r) => r.type === type);
  assert.strictEqual(found.length, 1, `expected one ${type}, got ${found.length}`);
  return found[0];
}

/** What the engine saw of the one registration of `type`: its hooks, protection, dependencies. */
function registration(run: OfflineRun, type: string): Registration {
  const found = run.registrations.filter((r) => r.type === type);
  assert.strictEqual(found.length, 1, `expected one registration of ${type}, got ${found.length}`);
  return found[0];
}

const CONFIG_PATCH = "kubernetes:core/v1:ConfigMapPatch";
const DEPLOYMENT_PATCH = "kubernetes:apps/v1:DeploymentPatch";

for (const stack of ["staging", "prod"]) {
  describe(`backend route through the program, stack ${stack}`, () => {
    const s = loadStackSettings(stack);
    const poolerHost = `pgbouncer.${s.namespace}.svc.cluster.local`;

    describe("GIVEN the stack file (route pgbouncer)", () => {
      let run: OfflineRun;
      before(async () => {
        run = await runOffline({ stack, vault: fakeVault(stack) });
      });

      it("patches the backend's ConfigMap with the pooler Service's DNS name and client port", () => {
        const patch = only(run, CONFIG_PATCH);
        const meta = patch.inputs.metadata as any;
        assert.strictEqual(meta.name, s.backend.configMapName);
        assert.strictEqual(meta.namespace, s.namespace);
        assert.deepStrictEqual(patch.inputs.data, {
          [s.backend.hostKey]: poolerHost,
          [s.backend.portKey]: String(s.workload.port),
        });
      });

      it("owns the keys under a fixed field manager, forcing conflicts as the stack says", () => {
        for (const type of [CONFIG_PATCH, DEPLOYMENT_PATCH]) {
          const ann = (only(run, type).inputs.metadata as any).annotations;
          assert.strictEqual(ann["pulumi.com/patchFieldManager"], FIELD_MANAGER);
          assert.strictEqual(ann["pulumi.com/patchForce"], s.backend.forceConflicts ? "true" : undefined);
        }
      });

      it("rolls the backend Deployment through a pod template annotation naming the route", () => {
        const patch = only(run, DEPLOYMENT_PATCH);
        const inputs = patch.inputs as any;
        assert.strictEqual(inputs.metadata.name, s.backend.deploymentName);
        assert.deepStrictEqual(inputs.spec, {
          template: {
            metadata: { annotations: { [ROUTE_ANNOTATION]: `pgbouncer/${poolerHost}:${s.workload.port}` } },
          },
        });
      });

      it("exports dbHost, dbPort, dbRoute and metricsEndpoint in the clear", () => {
        assert.strictEqual(run.outputs.dbHost, poolerHost);
        assert.strictEqual(run.outputs.dbPort, s.workload.port);
        assert.strictEqual(run.outputs.dbRoute, "pgbouncer");
        assert.strictEqual(run.outputs.metricsEndpoint, `http://${poolerHost}:${s.exporter.port}/metrics`);
        for (const k of ["dbHost", "dbPort", "dbRoute", "metricsEndpoint"]) {
          assert.ok(!run.secretOutputs.includes(k), `${k} should not be secret`);
        }
      });

      it("exports connectionUrl as a secret built from the Vault login and the pooler endpoint", () => {
        assert.ok(run.secretOutputs.includes("connectionUrl"), "connectionUrl is not a secret");
        const url = new URL(String(run.outputs.connectionUrl));
        assert.strictEqual(url.protocol, "postgres:");
        assert.strictEqual(decodeURIComponent(url.username), APP_USER);
        assert.strictEqual(decodeURIComponent(url.password), APP_PASSWORD);
        assert.strictEqual(url.hostname, poolerHost);
        assert.strictEqual(url.port, String(s.workload.port));
        assert.strictEqual(url.pathname, `/${s.database.name}`);
      });

      it("registers the destroy guard and binds it to both patches, protected and kept on delete", () => {
        assert.deepStrictEqual(run.hooks, [DESTROY_GUARD_HOOK]);
        for (const type of [CONFIG_PATCH, DEPLOYMENT_PATCH]) {
          const r = registration(run, type);
          assert.deepStrictEqual(
            { hooks: r.hooks, protect: r.protect, retainOnDelete: r.retainOnDelete },
            { hooks: { beforeDelete: [DESTROY_GUARD_HOOK] }, protect: true, retainOnDelete: true },
            type,
          );
        }
      });

      it("the app password appears in no resource input", () => {
        const plain = JSON.stringify(
          run.resources.map((r) => r.inputs),
          (_k, v: unknown) => (isSecretMarker(v) ? "[secret]" : v),
        );
        assert.ok(!plain.includes(APP_PASSWORD));
      });
    });

    describe("GIVEN backend.route = direct (the rollback)", () => {
      let run: OfflineRun;
      before(async () => {
        run = await runOffline({
          stack,
          vault: fakeVault(stack),
          config: {
            "clipper-pgbouncer:backend": JSON.stringify({
              ...(JSON.parse(stackFileConfig(stack)["clipper-pgbouncer:backend"]) as object),
              route: "direct",
            }),
          },
        });
      });

      it("patches DB_HOST/DB_PORT with PostgreSQL's host and port", () => {
        assert.deepStrictEqual(only(run, CONFIG_PATCH).inputs.data, {
          [s.backend.hostKey]: s.database.host,
          [s.backend.portKey]: String(s.database.port),
        });
      });

      it("changes the pod template annotation, so the backend rolls back", () => {
        const ann = (only(run, DEPLOYMENT_PATCH).inputs as any).spec.template.metadata.annotations;
        assert.strictEqual(ann[ROUTE_ANNOTATION], `direct/${s.database.host}:${s.database.port}`);
      });

      it("exports PostgreSQL's endpoint as dbHost/dbPort and in connectionUrl; metrics stay the pooler's", () => {
        assert.strictEqual(run.outputs.dbRoute, "direct");
        assert.strictEqual(run.outputs.dbHost, s.database.host);
        assert.strictEqual(run.outputs.dbPort, s.database.port);
        const url = new URL(String(run.outputs.connectionUrl));
        assert.strictEqual(`${url.hostname}:${url.port}`, `${s.database.host}:${s.database.port}`);
        assert.ok(run.secretOutputs.includes("connectionUrl"));
        assert.strictEqual(run.outputs.metricsEndpoint, `http://${poolerHost}:${s.exporter.port}/metrics`);
      });

      it("neither guards nor protects the patches (a destroy may go ahead), and still keeps them on delete", () => {
        assert.deepStrictEqual(run.hooks, []);
        for (const type of [CONFIG_PATCH, DEPLOYMENT_PATCH]) {
          const r = registration(run, type);
          assert.deepStrictEqual(
            { hooks: r.hooks, protect: r.protect, retainOnDelete: r.retainOnDelete },
            { hooks: {}, protect: false, retainOnDelete: true },
            type,
          );
        }
      });

      it("keeps the pooler deployed, so going back to pgbouncer is one setting away", () => {
        assert.ok(run.resources.some((r) => r.type === "kubernetes:apps/v1:StatefulSet"));
      });
    });
  });
}

describe("backend route through the program: connectionUrl without a password", () => {
  it("GIVEN authFileSecret verifier and Vault holding the app's SCRAM verifier THEN connectionUrl is left out and the rest is exported", async () => {
    const s = loadStackSettings("staging").credentials;
    const raw = rawStackConfig(stackFileConfig("staging"));
    const run = await runOffline({
      stack: "staging",
      config: {
        "clipper-pgbouncer:credentials": JSON.stringify({
          ...(raw.credentials as object),
          authFileSecret: "verifier",
          // one login: a second one needs the password in the auth file
          secondLogin: undefined,
        }),
      },
      vault: fakeVault("staging", { [s.appPasswordKey]: scramVerifier(APP_USER, APP_PASSWORD) }),
    });
    assert.ok(!("connectionUrl" in run.outputs));
    assert.strictEqual(run.outputs.dbRoute, "pgbouncer");
    assert.ok(run.resources.some((r) => r.type === CONFIG_PATCH));
  });
});

describe("a rename of the backend's objects while routed (the last update's outputs, read back)", () => {
  const s = loadStackSettings("prod");
  const routed = {
    dbRoute: "pgbouncer",
    backendObjects: {
      namespace: s.namespace,
      configMapName: "backend-config",
      deploymentName: "clipper-backend",
    },
  };
  /** A prod run whose backend section has `backend` merged in, after an update that exported `last`. */
  async function runAfter(
    last: Record<string, unknown>,
    backend: Record<string, unknown> = {},
    record?: RecordedResource[],
  ) {
    const config = {
      "clipper-pgbouncer:backend": JSON.stringify({
        ...(JSON.parse(stackFileConfig("prod")["clipper-pgbouncer:backend"]) as object),
        ...backend,
      }),
    };
    return runOffline({
      stack: "prod",
      config,
      vault: fakeVault("prod"),
      lastOutputs: last,
      ...(record ? { record } : {}),
    });
  }

  it("exports the objects it patches, which the next update reads back", async () => {
    const run = await runAfter({});
    assert.deepStrictEqual(run.outputs.backendObjects, routed.backendObjects);
    assert.deepStrictEqual(
      run.registrations.filter((r) => r.read).map((r) => [r.type, r.name]),
      [["pulumi:pulumi:StackReference", "clipper-last-update"]],
    );
  });

  for (const [what, backend] of [
    ["the ConfigMap", { configMapName: "backend-config-v2" }],
    ["the Deployment", { deploymentName: "clipper-api" }],
    ["the namespace", { namespace: "clipper-backend" }],
    [
      "the ConfigMap, with route direct in the same update",
      { configMapName: "backend-config-v2", route: "direct" },
    ],
  ] as const) {
    it(`GIVEN the last update routed THEN renaming ${what} is refused with the two updates that do it`, async () => {
      const record: RecordedResource[] = [];
      await assert.rejects(runAfter(routed, backend, record), (e: unknown) => {
        assert.ok(pulumi.RunError.isInstance(e), String(e));
        assert.match(
          e.message,
          /^the backend's objects cannot be renamed while the backend is routed to the pooler: the last pulumi up routed ConfigMap clipper\/backend-config and Deployment clipper\/clipper-backend \(backend\.route pgbouncer\), and clipper-pgbouncer:backend\.\w+ is now "[\w-]+" \(was "[\w-]+"\)/,
        );
        assert.match(
          e.message,
          /first `pulumi config set --path backend\.route direct` with the old names and `pulumi up`/,
        );
        assert.match(e.message, /then the new names and backend\.route pgbouncer, and `pulumi up`/);
        assert.doesNotMatch(e.message, /\n\s+at /);
        return true;
      });
      assert.deepStrictEqual(
        record.map((r) => r.type),
        ["pulumi:providers:vault"],
        "nothing else registered",
      );
    });
  }

  it("GIVEN the last update direct THEN the rename goes ahead (the patches are not protected)", async () => {
    const run = await runAfter({ ...routed, dbRoute: "direct" }, { configMapName: "backend-config-v2" });
    assert.strictEqual(
      (only(run, CONFIG_PATCH).inputs.metadata as { name: string }).name,
      "backend-config-v2",
    );
  });

  it("GIVEN the last update routed the same objects THEN nothing is refused", async () => {
    const run = await runAfter(routed);
    assert.strictEqual(run.outputs.dbRoute, "pgbouncer");
  });

  it("GIVEN the renamed object missing too THEN one message names both problems", async () => {
    await assert.rejects(
      runOffline({
        stack: "prod",
        config: {
          "clipper-pgbouncer:backend": JSON.stringify({
            ...(JSON.parse(stackFileConfig("prod")["clipper-pgbouncer:backend"]) as object),
            deploymentName: "clipper-api",
          }),
        },
        vault: fakeVault("prod"),
        lastOutputs: routed,
        world: offlineWorld(
          stackConfig("prod", {
            "clipper-pgbouncer:backend": JSON.stringify({
              ...(JSON.parse(stackFileConfig("prod")["clipper-pgbouncer:backend"]) as object),
              deploymentName: "clipper-api",
            }),
          }),
          { missing: ["Deployment clipper/clipper-api"] },
        ),
      }),
      /the stack cannot be deployed as it is \(2 refusals\):\n {2}- the backend's objects cannot be renamed while the backend is routed[^\n]*\n {2}- the stack names an object[^\n]*\n {6}- Deployment clipper\/clipper-api \(clipper-pgbouncer:backend\.deploymentName\): does not exist/,
    );
  });
});
