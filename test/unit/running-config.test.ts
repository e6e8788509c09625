/**
 * Which settings are Pulumi secrets, as the running program learns it from the SDK: the keys the CLI marks
 * secret (`PULUMI_CONFIG_SECRET_KEYS`, which `setAllConfig` sets here as the CLI's language host does).
 */
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { configSecretTest, runningStackConfig } from "../../stacks/running-config";

describe("the running stack's config", () => {
  let saved: Record<string, string>;
  before(() => {
    saved = pulumi.runtime.allConfig();
  });
  after(() => pulumi.runtime.setAllConfig(saved));

  it("names the sections whose config keys are secret, and decodes every value", () => {
    pulumi.runtime.setAllConfig(
      {
        "clipper-pgbouncer:database": '{"maxConnections":200}',
        "clipper-pgbouncer:namespace": "clipper",
        "clipper-pgbouncer:pool": '{"maxDbConnections":50}',
        "vault:token": "t",
      },
      ["clipper-pgbouncer:database", "vault:token"],
    );
    const c = runningStackConfig();
    assert.deepStrictEqual([...c.secretSections], ["database"]);
    assert.deepStrictEqual(c.raw, {
      database: { maxConnections: 200 },
      namespace: "clipper",
      pool: { maxDbConnections: 50 },
    });
  });

  it("names none when no key is secret", () => {
    pulumi.runtime.setAllConfig({ "clipper-pgbouncer:pool": "{}" });
    assert.deepStrictEqual([...runningStackConfig().secretSections], []);
  });

  it("refuses to run on an SDK that cannot tell secret keys", () => {
    assert.throws(
      () => configSecretTest({}),
      /has no isConfigSecret: the program cannot tell which settings/,
    );
    assert.strictEqual(typeof configSecretTest(), "function");
  });
});
