/**
 * ConfigMaps and Secrets updated in place (issue 24, item 3): the stack's Kubernetes provider updates them
 * instead of deleting and creating them again, so a renewed certificate never leaves its stable-named Secret
 * or ConfigMap missing; the auto-named ini ConfigMap and auth Secret say `immutable: true`, which keeps them
 * replaced under a new name on a change, so the pods still roll onto a new ini or password.
 */
import * as assert from "assert";
import { loadStackSettings } from "../../stacks/settings";
import { CONFIG_NAMESPACE, rawStackConfig, stackFileConfig } from "../../stacks/stack-file";
import { type OfflineRun, type RecordedResource, runOffline } from "../../testing/engine";
import { offlineVault } from "../../testing/offline-vault";

const CONFIG_MAP = "kubernetes:core/v1:ConfigMap";
const SECRET = "kubernetes:core/v1:Secret";

function meta(r: RecordedResource): { name?: string } {
  return r.inputs.metadata ?? {};
}

function one(run: OfflineRun, type: string, name: string): RecordedResource {
  const found = run.resources.filter((r) => r.type === type && r.name === name);
  assert.strictEqual(found.length, 1, `one ${type} ${name}`);
  return found[0];
}

/** The names the pod template mounts its ini ConfigMap and auth Secret by. */
function mounted(run: OfflineRun): { config: string; auth: string } {
  const d = one(run, "kubernetes:apps/v1:Deployment", "pgbouncer-deployment").inputs as any;
  const volumes = d.spec.template.spec.volumes as any[];
  return {
    config: volumes.find((v) => v.name === "config").configMap.name,
    auth: volumes.find((v) => v.name === "auth").secret.secretName,
  };
}

for (const stack of ["staging", "prod"]) {
  describe(`ConfigMaps and Secrets, stack ${stack}`, () => {
    let run: OfflineRun;
    before(async () => {
      run = await runOffline({ stack, vault: offlineVault(stack) });
    });

    it("the Kubernetes provider updates ConfigMaps and Secrets in place", () => {
      const k8s = run.resources.filter((r) => r.type === "pulumi:providers:kubernetes");
      assert.strictEqual(k8s.length, 1);
      assert.strictEqual(k8s[0].inputs.enableConfigMapMutable, "true");
      assert.strictEqual(k8s[0].inputs.enableSecretMutable, "true");
    });

    it("every auto-named one is immutable (replaced on a change), every stable-named one is not", () => {
      const all = run.resources.filter((r) => r.type === CONFIG_MAP || r.type === SECRET);
      const auto = all
        .filter((r) => meta(r).name === undefined)
        .map((r) => `${r.name}:${String(r.inputs.immutable)}`);
      const stable = all
        .filter((r) => meta(r).name !== undefined)
        .map((r) => `${r.name}:${String(r.inputs.immutable)}`);
      assert.deepStrictEqual(auto.sort(), ["pgbouncer-auth:true", "pgbouncer-config:true"]);
      assert.ok(stable.length >= 2, stable.join(", "));
      assert.deepStrictEqual(
        stable.filter((x) => !x.endsWith(":undefined")),
        [],
      );
    });
  });
}

describe("a change to the ini or to a password still rolls the pods", () => {
  const s = loadStackSettings("prod");
  let before_: OfflineRun;
  before(async () => {
    before_ = await runOffline({ stack: "prod", vault: offlineVault("prod") });
  });

  it("GIVEN another server_idle_timeout THEN a new ConfigMap, and the pod template names it", async () => {
    const raw = rawStackConfig(stackFileConfig("prod"));
    const config = {
      [`${CONFIG_NAMESPACE}:pool`]: JSON.stringify({
        ...(raw.pool as object),
        serverIdleTimeoutSeconds: 300,
      }),
    };
    const after = await runOffline({ stack: "prod", config, vault: offlineVault("prod", { config }) });
    assert.notStrictEqual(mounted(after).config, mounted(before_).config);
    assert.strictEqual(mounted(after).auth, mounted(before_).auth);
    assert.strictEqual(one(after, CONFIG_MAP, "pgbouncer-config").inputs.immutable, true);
  });

  it("GIVEN a rotated password in Vault THEN a new auth Secret, and the pod template names it", async () => {
    const vault = offlineVault("prod", { values: { [s.credentials.appPasswordKey]: "rotated-password-2" } });
    const after = await runOffline({ stack: "prod", vault });
    assert.notStrictEqual(mounted(after).auth, mounted(before_).auth);
    assert.strictEqual(mounted(after).config, mounted(before_).config);
    assert.strictEqual(one(after, SECRET, "pgbouncer-auth").inputs.immutable, true);
  });
});
