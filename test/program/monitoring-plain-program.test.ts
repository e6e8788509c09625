/**
 * Plain-mode alert rules that a Prometheus can find (issue 24, item 5): through the whole program, the rules
 * ConfigMap keeps one name across a threshold change and a renewed certificate, carries the label a rules
 * sidecar selects, and the stack output `rulesConfigMap` names it.
 */
import * as assert from "assert";
import { CONFIG_NAMESPACE, rawStackConfig, stackFileConfig } from "../../stacks/stack-file";
import { type OfflineRun, runOffline } from "../../testing/engine";
import { offlineVault } from "../../testing/offline-vault";

const RULES = "pgbouncer-monitoring-rules";

/** A prod run in plain mode, with monitoring, pool or TLS fields changed. */
async function plain(changes: Record<string, Record<string, unknown>> = {}): Promise<OfflineRun> {
  const raw = rawStackConfig(stackFileConfig("prod"));
  const sections: Record<string, Record<string, unknown>> = { monitoring: { mode: "plain" }, ...changes };
  sections.monitoring = { mode: "plain", ...sections.monitoring };
  const config = Object.fromEntries(
    Object.entries(sections).map(([k, v]) => [
      `${CONFIG_NAMESPACE}:${k}`,
      JSON.stringify({ ...((raw[k] as object) ?? {}), ...v }),
    ]),
  );
  return runOffline({ stack: "prod", config, vault: offlineVault("prod", { config }) });
}

function rulesConfigMap(run: OfflineRun): { name: string; labels: Record<string, string>; rules: string } {
  const found = run.resources.filter((r) => r.type === "kubernetes:core/v1:ConfigMap" && r.name === RULES);
  assert.strictEqual(found.length, 1);
  const inputs = found[0].inputs as {
    metadata: { name: string; labels: Record<string, string> };
    data: Record<string, string>;
  };
  return {
    name: inputs.metadata.name,
    labels: inputs.metadata.labels,
    rules: inputs.data["pgbouncer-rules.yml"],
  };
}

describe("plain-mode alert rules, through the program (prod in plain mode)", () => {
  let first: OfflineRun;
  before(async () => {
    first = await plain();
  });

  it("keeps the rules ConfigMap's name across a threshold change (which changes its rules)", async () => {
    const second = await plain({ monitoring: { exhaustionServerConnections: 40, for: { down: 90 } } });
    assert.notStrictEqual(rulesConfigMap(second).rules, rulesConfigMap(first).rules);
    assert.strictEqual(rulesConfigMap(second).name, rulesConfigMap(first).name);
    assert.strictEqual(rulesConfigMap(first).name, RULES);
  });

  it("keeps it across a renewed certificate (whose expiry is in the rules)", async () => {
    const renewed = await plain({ tls: { certificate: { source: "vault-pki", ttlSeconds: 1728000 } } });
    assert.strictEqual(rulesConfigMap(renewed).name, RULES);
  });

  it("labels it for a rules sidecar, as monitoring.rulesConfigMapLabels says (default prometheus_rule: 1)", async () => {
    assert.deepStrictEqual(rulesConfigMap(first).labels, { prometheus_rule: "1" });
    const other = await plain({
      monitoring: { rulesConfigMapLabels: { "rules.example/load": "pgbouncer" } },
    });
    assert.deepStrictEqual(rulesConfigMap(other).labels, { "rules.example/load": "pgbouncer" });
  });

  it("names it in the stack output rulesConfigMap, beside scrapeJob; prometheus-operator mode exports neither", async () => {
    assert.strictEqual(first.outputs.rulesConfigMap, RULES);
    assert.ok(first.outputs.scrapeJob);
    const operator = await runOffline({ stack: "prod", vault: offlineVault("prod") });
    assert.ok(!("rulesConfigMap" in operator.outputs) && !("scrapeJob" in operator.outputs));
  });
});
