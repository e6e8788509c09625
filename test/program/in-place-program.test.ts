/**
 * ConfigMaps and Secrets updated in place (issue 24, item 3; issue 26): the stack's Kubernetes provider updates
 * them instead of deleting and creating them again, so a mount never sees a stable-named one missing: the
 * renewed certificate's, the shared ini's and the auth file's, which the pods reload. The one auto-named
 * object, the exporters' Secret (read from the environment at start), says `immutable: true`: a change
 * replaces it under a new name and rolls the pods.
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

/** The StatefulSet's pod template. */
function template(run: OfflineRun): unknown {
  return (one(run, "kubernetes:apps/v1:StatefulSet", "pgbouncer-statefulset").inputs as any).spec.template;
}

/** The names the pod template mounts its ini ConfigMap and auth Secret by. */
function mounted(run: OfflineRun): { config: string; auth: string } {
  const volumes = (template(run) as any).spec.volumes as any[];
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

    it("the exporters' Secret alone is auto-named and immutable (replaced on a change); every stable-named one is not", () => {
      const all = run.resources.filter((r) => r.type === CONFIG_MAP || r.type === SECRET);
      const auto = all
        .filter((r) => meta(r).name === undefined)
        .map((r) => `${r.name}:${String(r.inputs.immutable)}`);
      const stable = all
        .filter((r) => meta(r).name !== undefined)
        .map((r) => `${r.name}:${String(r.inputs.immutable)}`);
      assert.deepStrictEqual(auto.sort(), ["pgbouncer-exporter:true"]);
      assert.ok(stable.includes("pgbouncer-config:undefined"), stable.join(", "));
      assert.ok(stable.includes("pgbouncer-auth:undefined"), stable.join(", "));
      assert.deepStrictEqual(
        stable.filter((x) => !x.endsWith(":undefined")),
        [],
      );
    });
  });
}

describe("a change to the ini or to a password is updated in place and rolls no pod", () => {
  const s = loadStackSettings("prod");
  let before_: OfflineRun;
  before(async () => {
    before_ = await runOffline({ stack: "prod", vault: offlineVault("prod") });
  });

  it("GIVEN another server_idle_timeout THEN the same ConfigMap with the new ini, and the same pod template", async () => {
    const raw = rawStackConfig(stackFileConfig("prod"));
    const config = {
      [`${CONFIG_NAMESPACE}:pool`]: JSON.stringify({
        ...(raw.pool as object),
        serverIdleTimeoutSeconds: 300,
      }),
    };
    const after = await runOffline({ stack: "prod", config, vault: offlineVault("prod", { config }) });
    const ini = (r: OfflineRun) =>
      String((one(r, CONFIG_MAP, "pgbouncer-config").inputs as any).data["pgbouncer.ini"]);
    assert.match(ini(after), /^server_idle_timeout = 300$/m);
    assert.doesNotMatch(ini(before_), /^server_idle_timeout = 300$/m);
    assert.deepStrictEqual(mounted(after), mounted(before_));
    assert.deepStrictEqual(template(after), template(before_));
  });

  it("GIVEN a rotated password in Vault THEN the same auth Secret, and the same pod template", async () => {
    const vault = offlineVault("prod", { values: { [s.credentials.appPasswordKey]: "rotated-password-2" } });
    const after = await runOffline({ stack: "prod", vault });
    assert.deepStrictEqual(mounted(after), mounted(before_));
    assert.deepStrictEqual(template(after), template(before_));
  });

  it("GIVEN the client port THEN the pod template changes (a roll)", async () => {
    const raw = rawStackConfig(stackFileConfig("prod"));
    const config = {
      [`${CONFIG_NAMESPACE}:pgbouncer`]: JSON.stringify({ ...(raw.pgbouncer as object), port: 6433 }),
    };
    const after = await runOffline({ stack: "prod", config, vault: offlineVault("prod", { config }) });
    assert.notDeepStrictEqual(template(after), template(before_));
  });
});
