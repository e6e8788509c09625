/**
 * docs/runbook.md against the code: every setting, npm script, stack, object name, container, port, output,
 * Vault key, alert and budget figure it quotes is the one the program uses.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { BACKEND_ROUTE_DEFAULTS, FIELD_MANAGER, ROUTE_ANNOTATION } from "../../components/backend-route";
import { ConfigError } from "../../components/common";
import { ALERT_NAMES, deriveThresholds } from "../../components/monitoring";
import { SERVICE_NAME, STATEFULSET_NAME, podName, settingsPoolBudget } from "../../components/pgbouncer";
import { type StackSettings, parseSettings, loadStackSettings } from "../../stacks/settings";
import {
  PROJECT_DIR,
  listStacks,
  stackFileConfig,
  CONFIG_NAMESPACE,
  rawStackConfig,
} from "../../stacks/stack-file";
import { type OfflineRun, runOffline } from "../../testing/engine";
import { offlineVault } from "../../testing/offline-vault";

const RUNBOOK = fs.readFileSync(path.join(PROJECT_DIR, "docs", "runbook.md"), "utf8");
/** The runbook with line breaks folded, for phrases prettier may wrap. */
const FLAT = RUNBOOK.replace(/\s+/g, " ");
const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};

const settings: Record<string, StackSettings> = Object.fromEntries(
  listStacks().map((s) => [s, loadStackSettings(s)]),
);

function all(re: RegExp): RegExpExecArray[] {
  return [...RUNBOOK.matchAll(new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g"))];
}

/** Whether `section.field` is a setting the program reads (setting it is not refused as unknown). */
function isKnownSetting(section: string, field: string): boolean {
  const raw = rawStackConfig(stackFileConfig("prod"));
  const current = raw[section];
  raw[section] = {
    ...(typeof current === "object" && current !== null ? current : {}),
    [field]: "\u0000probe",
  };
  try {
    parseSettings(raw);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return !e.issues.some(
      (i) => i.key === `${CONFIG_NAMESPACE}:${section}.${field}` && /not a known setting/.test(i.message),
    );
  }
  return true;
}

describe("docs/runbook.md matches the code", () => {
  let prod: OfflineRun;
  before(async () => {
    prod = await runOffline({ stack: "prod", vault: offlineVault("prod") });
  });

  it("every setting it names is one the program reads", () => {
    const sections = ["pgbouncer", "pool", "database", "exporter", "network", "credentials", "backend"];
    const named = all(new RegExp(`(?:\`|--path )(${sections.join("|")})\\.([A-Za-z]+)\\b`)).map((m) => [
      m[1],
      m[2],
    ]);
    assert.ok(named.length >= 15, `only ${named.length} settings found`);
    for (const [section, field] of named) assert.ok(isKnownSetting(section, field), `${section}.${field}`);
  });

  it("the settings probe can fail", () => {
    assert.strictEqual(isKnownSetting("backend", "rout"), false);
    assert.strictEqual(isKnownSetting("backend", "route"), true);
  });

  it("every npm script and stack it runs exists", () => {
    const scripts = all(/npm run ([a-z0-9:-]+)/).map((m) => m[1]);
    assert.ok(scripts.length > 0);
    for (const s of scripts) assert.ok(pkg.scripts[s], `npm run ${s}`);
    const stacks = all(/--stack ([a-z]+)/).map((m) => m[1]);
    assert.ok(stacks.length > 0);
    for (const s of stacks) assert.ok(listStacks().includes(s), `--stack ${s}`);
  });

  it("names the objects, containers, namespaces and ports the program deploys", () => {
    const deployments = new Set(all(/deployment\/([a-z0-9-]+)/).map((m) => m[1]));
    assert.deepStrictEqual([...deployments], [BACKEND_ROUTE_DEFAULTS.deploymentName]);
    const statefulSets = new Set(all(/statefulset\/([a-z0-9-]+)/).map((m) => m[1]));
    assert.deepStrictEqual([...statefulSets], [STATEFULSET_NAME]);
    const replicas = Math.max(...Object.values(settings).map((s) => s.workload.replicas));
    const pods = Array.from({ length: replicas }, (_, i) => podName(i));
    for (const m of all(/pod\/([a-z0-9-]+)/)) assert.ok(pods.includes(m[1]), `pod/${m[1]}`);
    for (const m of all(/svc\/([a-z0-9-]+)/)) assert.strictEqual(m[1], SERVICE_NAME);
    for (const m of all(/configmap ([a-z0-9][a-z0-9-]*)/))
      assert.strictEqual(m[1], BACKEND_ROUTE_DEFAULTS.configMapName);
    for (const s of Object.values(settings)) {
      assert.strictEqual(s.backend.configMapName, BACKEND_ROUTE_DEFAULTS.configMapName);
      assert.strictEqual(s.backend.deploymentName, BACKEND_ROUTE_DEFAULTS.deploymentName);
    }
    const namespaces = Object.values(settings).map((s) => s.namespace);
    for (const m of all(/-n ([a-z0-9-]+)/)) assert.ok(namespaces.includes(m[1]), `-n ${m[1]}`);

    const deployment = prod.resources.find((r) => r.type === "kubernetes:apps/v1:StatefulSet")!;
    const containers = (deployment.inputs as any).spec.template.spec.containers.map(
      (c: any) => c.name as string,
    );
    const quoted = all(/-c ([a-z-]+)/).map((m) => m[1]);
    assert.ok(quoted.length > 0);
    for (const c of quoted) assert.ok(containers.includes(c), `-c ${c}`);

    const p = settings.prod;
    for (const m of all(/port-forward (?:pod|svc)\/[a-z0-9-]+ \d+:(\d+)/)) {
      assert.ok([p.workload.port, p.exporter.port].includes(Number(m[1])), `port ${m[1]}`);
    }
    assert.ok(FLAT.includes(`client port ${p.workload.port}, metrics port ${p.exporter.port}`));
    assert.ok(
      RUNBOOK.includes(`\`${ROUTE_ANNOTATION}\``) && RUNBOOK.includes(ROUTE_ANNOTATION.replace(".", "\\.")),
    );
    assert.ok(FLAT.includes(`field manager \`${FIELD_MANAGER}\``));
  });

  it("quotes each stack's pool budget exactly as poolBudget words it", () => {
    for (const [stack, s] of Object.entries(settings)) {
      const b = settingsPoolBudget(s);
      assert.ok(RUNBOOK.includes(`- ${stack}: ${b.arithmetic}\n`), `${stack}: ${b.arithmetic}`);
    }
  });

  it("has a section for every alert (its runbook_url anchor)", () => {
    for (const a of ALERT_NAMES) assert.match(RUNBOOK, new RegExp(`^### ${a}$`, "m"), a);
  });

  it("every stack output it reads is exported", () => {
    const outputs = Object.keys(prod.outputs);
    const read = [
      ...all(/pulumi stack output --stack [a-z]+ (?:--show-secrets )?([A-Za-z]+)/).map((m) => m[1]),
      ...all(/(?:require|getSecret)Output\("([A-Za-z]+)"\)/).map((m) => m[1]),
      ...all(/^\| `([A-Za-z]+)`/m).map((m) => m[1]),
    ];
    assert.ok(read.length >= 8);
    for (const o of read) assert.ok(outputs.includes(o), `output ${o} (exported: ${outputs.join(", ")})`);
    assert.ok(prod.secretOutputs.includes("connectionUrl"));
  });

  it("the emergency --target URNs are the backend patches the offline run registers", () => {
    const urns = all(/--target 'urn:pulumi:([a-z]+)::([a-z-]+)::([^']+)::([a-z-]+)'/);
    assert.strictEqual(urns.length, 2);
    for (const [, stack, project, types, name] of urns) {
      assert.strictEqual(stack, "prod");
      assert.strictEqual(project, CONFIG_NAMESPACE);
      const [parent, type] = types.split("$");
      assert.ok(prod.resources.some((r) => r.type === parent));
      assert.ok(
        prod.resources.some((r) => r.type === type && r.name === name),
        `${type}::${name}`,
      );
    }
  });

  it("the Vault reads and the psql login use the stack's mount, path, keys and stats user", () => {
    const c = settings.prod.credentials;
    const m = /vault kv get -mount=(\S+) -field=(\S+) (\S+)\)/.exec(RUNBOOK);
    assert.ok(m);
    assert.deepStrictEqual([m[1], m[2], m[3]], [c.vaultMount, c.statsPasswordKey, c.vaultPath]);
    assert.match(RUNBOOK, new RegExp(`dbname=pgbouncer user=${settings.prod.exporter.statsUser}"`));
    for (const s of Object.values(settings)) assert.ok(RUNBOOK.includes(`\`${s.credentials.vaultPath}\``));
  });

  it("the manual rollback patch writes prod's database host and port under the configured keys", () => {
    const { backend, database } = settings.prod;
    assert.ok(
      RUNBOOK.includes(
        `{"data":{"${backend.hostKey}":"${database.host}","${backend.portKey}":"${database.port}"}}`,
      ),
    );
  });

  it("names each stack's Grafana folder and dashboard uid", () => {
    for (const s of Object.values(settings)) {
      const { grafanaFolder, dashboardUid } = s.monitoring;
      assert.ok(FLAT.includes(`folder \`${grafanaFolder}\``), grafanaFolder);
      assert.ok(FLAT.includes(`uid \`${dashboardUid}\``), dashboardUid);
    }
    assert.ok(RUNBOOK.includes(`/d/${settings.prod.monitoring.dashboardUid}\``));
  });

  it("the field-ownership section names the patch's manager, the keys it owns and the values it sets", () => {
    const section = RUNBOOK.split("### Field ownership")[1].split("\n## ")[0];
    const { backend, namespace } = settings.prod;
    assert.ok(section.includes(`conflicts with "${FIELD_MANAGER}"`));
    assert.ok(section.includes(`the \`${FIELD_MANAGER}\` entry lists`));
    for (const k of [backend.hostKey, backend.portKey]) {
      assert.ok(section.includes(`\`f:${k}\``), k);
      assert.ok(section.includes(`\`.data.${k}\``), k);
    }
    assert.ok(section.includes(`dbHost    # ${String(prod.outputs.dbHost)}\n`));
    assert.ok(section.includes(`dbPort    # ${String(prod.outputs.dbPort)}\n`));
    const apply = `kubectl -n ${namespace} apply --server-side -f ${backend.configMapName}.yaml`;
    assert.ok(section.split(apply).length - 1 >= 2, apply);
    assert.ok(!/kubectl[^\n]*--force-conflicts/.test(section), "the backend team must not force");
  });

  it("quotes each stack's exhaustion level as the alert derives it, below the cap", () => {
    for (const [stack, s] of Object.entries(settings)) {
      const t = deriveThresholds(s.pool, s.monitoring.exhaustionServerConnections);
      assert.ok(t.exhaustionServerConnections < t.serverCap, stack);
      const quoted = `${t.exhaustionServerConnections} of ${t.serverCap} in ${stack}`;
      assert.ok(FLAT.includes(quoted), quoted);
    }
  });

  it("figures quoted in prose are the prod settings'", () => {
    const p = settings.prod.pool;
    assert.ok(FLAT.includes(`\`pool.queryWaitTimeoutSeconds\` (${p.queryWaitTimeoutSeconds} s)`));
  });
});
