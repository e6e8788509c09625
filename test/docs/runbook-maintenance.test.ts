/**
 * The runbook's "Maintenance" section against the code: every spread field, default, figure, label and
 * policy it quotes is what the program renders and enforces.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { WORKLOAD_DEFAULTS, ZONE_TOPOLOGY_KEY, selectorLabels } from "../../components/pgbouncer";
import { POLICIES } from "../../policy/policies";
import type { StackSettings } from "../../stacks/settings";
import { PROJECT_DIR, listStacks } from "../../stacks/stack-file";
import { type OfflineRun, runOffline } from "../../testing/engine";
import { offlineVault } from "../../testing/offline-vault";
import { loadStackSettings } from "../../stacks/settings";

const RUNBOOK = fs.readFileSync(path.join(PROJECT_DIR, "docs", "runbook.md"), "utf8");
const SECTION = RUNBOOK.split(/^## Maintenance$/m)[1]?.split(/^## /m)[0] ?? "";
/** The section with line breaks folded, for phrases prettier may wrap. */
const FLAT = SECTION.replace(/\s+/g, " ");

const settings: Record<string, StackSettings> = Object.fromEntries(
  listStacks().map((s) => [s, loadStackSettings(s)]),
);

describe("docs/runbook.md, Maintenance, matches the code", () => {
  let prod: OfflineRun;
  let deployment: any;
  let pdb: any;
  before(async () => {
    prod = await runOffline({ stack: "prod", vault: offlineVault("prod") });
    const find = (type: string) => {
      const found = prod.resources.filter((r) => r.type === type);
      assert.strictEqual(found.length, 1, type);
      return found[0].inputs as any;
    };
    deployment = find("kubernetes:apps/v1:StatefulSet");
    pdb = find("kubernetes:policy/v1:PodDisruptionBudget");
  });

  it("covers node drains, cluster upgrades, zone outages and the spread's reasons", () => {
    for (const h of ["Node drain", "Cluster upgrade", "Zone outage", "Why the spread is what it is"]) {
      assert.match(SECTION, new RegExp(`^### ${h}$`, "m"), h);
    }
    for (const cmd of ["get pdb", "rollout status statefulset/pgbouncer", "-o wide", "drain <node>"]) {
      assert.ok(SECTION.includes(cmd), cmd);
    }
  });

  it("quotes the spread fields prod renders, and no other value for them", () => {
    const spread: any[] = deployment.spec.template.spec.topologySpreadConstraints;
    const quoted = [
      ...SECTION.matchAll(/`(maxSkew|nodeTaintsPolicy|nodeAffinityPolicy|matchLabelKeys): ([^`]+)`/g),
    ];
    assert.deepStrictEqual([...new Set(quoted.map((m) => m[1]))].sort(), [
      "matchLabelKeys",
      "maxSkew",
      "nodeAffinityPolicy",
      "nodeTaintsPolicy",
    ]);
    for (const [, field, value] of quoted) {
      const rendered = spread[0][field];
      const text = Array.isArray(rendered) ? `[${rendered.join(", ")}]` : String(rendered);
      assert.strictEqual(value, text, field);
    }
    assert.ok(FLAT.includes(`over \`pgbouncer.spreadTopologyKey\` (\`${spread[0].topologyKey}\`)`));
    assert.strictEqual(spread[0].topologyKey, settings.prod.workload.spreadTopologyKey);
  });

  it("names the defaults of the two spread settings as the settings give them", () => {
    const d = WORKLOAD_DEFAULTS;
    assert.ok(FLAT.includes(`Hostname spread \`${d.spreadWhenUnsatisfiable}\` by default`));
    assert.ok(FLAT.includes(`(\`pgbouncer.zoneSpread\`, default ${String(d.zoneSpread)})`));
    const [hostname, ...rest] = deployment.spec.template.spec.topologySpreadConstraints;
    assert.strictEqual(hostname.whenUnsatisfiable, d.spreadWhenUnsatisfiable, "prod runs the default");
    assert.deepStrictEqual(rest, [], "prod has no zone spread, as by default");
    assert.ok(FLAT.includes(`soft one over \`${ZONE_TOPOLOGY_KEY}\``));
    for (const m of SECTION.matchAll(/-L ([a-z0-9./-]+)/g)) assert.strictEqual(m[1], ZONE_TOPOLOGY_KEY);
  });

  it("quotes the replicas, PDB, rollout and shutdown figures of the stacks", () => {
    const replicas = new Set(Object.values(settings).map((s) => s.workload.replicas));
    assert.strictEqual(replicas.size, 1);
    assert.ok(FLAT.includes(`\`pgbouncer.replicas\` pods (${[...replicas][0]} in both stacks)`));
    assert.ok(FLAT.includes(`PodDisruptionBudget with \`maxUnavailable: ${pdb.spec.maxUnavailable}\``));
    // A StatefulSet replaces one pod at a time, each once the old one has gone: no surge to quote.
    assert.deepStrictEqual(deployment.spec.updateStrategy, { type: "RollingUpdate" });
    assert.ok(
      FLAT.includes("replaces one pod at a time, highest ordinal first, each once the old one has drained"),
    );
    assert.ok(FLAT.includes(`\`pgbouncer.drainSeconds\` (${settings.prod.workload.drainSeconds} s)`));
    const w = settings.prod.workload;
    assert.ok(FLAT.includes(`(< ${w.resources.cpuRequest} request)`), "the CPU request of the measured case");
    assert.ok(FLAT.includes(`\`pgbouncer.preStopDelaySeconds\` (${w.preStopDelaySeconds} s)`));
    assert.ok(
      FLAT.includes(`\`pgbouncer.terminationGracePeriodSeconds\` (${w.terminationGracePeriodSeconds} s)`),
    );
  });

  it("selects the pooler's pods and PDB by a label they carry", () => {
    const selectors = [...SECTION.matchAll(/-l ([^ `)]+)/g)].map((m) => m[1]);
    assert.ok(selectors.length >= 3);
    const labels: Record<string, string> = deployment.spec.template.metadata.labels;
    for (const s of selectors) {
      const [k, v] = s.split("=");
      assert.strictEqual(labels[k], v, s);
      assert.strictEqual(selectorLabels("pgbouncer")[k], v, `${s} is one of the selector's labels`);
      assert.strictEqual(pdb.metadata.labels[k], v, `${s} also selects the PDB`);
    }
  });

  it("names only policies the pack serves", () => {
    const named = [...SECTION.matchAll(/policy pack's `([a-z-]+)`/g)].map((m) => m[1]);
    assert.ok(named.length >= 1);
    for (const n of named)
      assert.ok(
        POLICIES.some((p) => p.name === n),
        n,
      );
  });
});
