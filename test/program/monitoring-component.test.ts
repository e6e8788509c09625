import { strict as assert } from "assert";
import * as yaml from "js-yaml";
import { alertRuleGroup, MONITORING_DEFAULTS } from "../../components/monitoring";
import {
  PgBouncerMonitoring,
  type PgBouncerMonitoringArgs,
  RULES_FILE_KEY,
} from "../../components/monitoring/resources";
import { POOL_DEFAULTS } from "../../components/pgbouncer";
import { type Registered, promiseOf, registered, resetMocks, settled } from "../support/mocks";

const MON = { ...MONITORING_DEFAULTS, runbookBaseUrl: "https://runbooks.example/pgbouncer" };
const SELECTOR = { "app.kubernetes.io/name": "pgbouncer", "app.kubernetes.io/instance": "pgbouncer" };

function args(overrides: Partial<PgBouncerMonitoringArgs> = {}): PgBouncerMonitoringArgs {
  return { namespace: "clipper", pool: POOL_DEFAULTS, monitoring: MON, podSelector: SELECTOR, ...overrides };
}

async function build(a: PgBouncerMonitoringArgs): Promise<PgBouncerMonitoring> {
  registered.length = 0;
  const c = new PgBouncerMonitoring("pgbouncer-monitoring", a);
  await promiseOf(c.rulesYaml);
  await settled();
  return c;
}

function byName(name: string): Registered {
  const r = registered.find((x) => x.name === name);
  if (!r) throw new Error(`no resource ${name}: ${registered.map((x) => x.name).join(", ")}`);
  return r;
}

describe("PgBouncerMonitoring component", () => {
  before(() => resetMocks());

  describe("GIVEN prometheus-operator mode", () => {
    let c: PgBouncerMonitoring;
    before(async () => {
      c = await build(args());
    });

    it("THEN it registers the PrometheusRule, the PodMonitor, a folder and a dashboard, named by role", () => {
      assert.deepEqual(
        registered.map((r) => [r.type, r.name]).sort((a, b) => a[1].localeCompare(b[1])),
        [
          ["clipper:monitoring:PgBouncerMonitoring", "pgbouncer-monitoring"],
          ["grafana:oss/dashboard:Dashboard", "pgbouncer-monitoring-dashboard"],
          ["grafana:oss/folder:Folder", "pgbouncer-monitoring-folder"],
          ["kubernetes:monitoring.coreos.com/v1:PodMonitor", "pgbouncer-monitoring-podmonitor"],
          ["kubernetes:monitoring.coreos.com/v1:PrometheusRule", "pgbouncer-monitoring-rules"],
        ],
      );
    });

    it("THEN the PrometheusRule carries the rule group and the ruleSelector labels", () => {
      const rule = byName("pgbouncer-monitoring-rules").inputs;
      assert.deepEqual(rule.metadata, { namespace: "clipper", labels: { release: "kube-prometheus-stack" } });
      assert.deepEqual(
        rule.spec,
        JSON.parse(JSON.stringify({ groups: [alertRuleGroup(POOL_DEFAULTS, MON)] })),
      );
    });

    it("THEN the PodMonitor selects the pooler pods' metrics port every 10 s", () => {
      const pm = byName("pgbouncer-monitoring-podmonitor").inputs as {
        metadata: unknown;
        spec: { selector: unknown; podMetricsEndpoints: { port: string; interval: string }[] };
      };
      assert.deepEqual(pm.metadata, { namespace: "clipper", labels: { release: "kube-prometheus-stack" } });
      assert.deepEqual(pm.spec.selector, { matchLabels: SELECTOR });
      assert.equal(pm.spec.podMetricsEndpoints[0].port, "metrics");
      assert.equal(pm.spec.podMetricsEndpoints[0].interval, "10s");
    });

    it("THEN the dashboard goes into the folder with ten panels and the settings' uid", () => {
      assert.deepEqual(byName("pgbouncer-monitoring-folder").inputs.title, "Clipper");
      const d = byName("pgbouncer-monitoring-dashboard").inputs;
      const json = JSON.parse(d.configJson as string) as { uid: string; title: string; panels: unknown[] };
      assert.equal(json.uid, "clipper-pgbouncer");
      assert.equal(json.title, "PgBouncer (clipper)");
      assert.equal(json.panels.length, 10);
    });

    it("THEN no scrape job is output (the operator scrapes)", async () => {
      assert.equal(await promiseOf(c.scrapeJob), undefined);
      assert.equal(await promiseOf(c.rulesConfigMap), undefined);
    });
  });

  describe("GIVEN plain mode without a dashboard", () => {
    let c: PgBouncerMonitoring;
    before(async () => {
      c = await build(
        args({
          monitoring: { ...MON, mode: "plain", dashboard: false, jobName: "pgb" },
          pool: { ...POOL_DEFAULTS, maxDbConnections: 20, defaultPoolSize: 20 },
        }),
      );
    });

    it("THEN only a rules ConfigMap is registered, holding the rules file", () => {
      assert.deepEqual(registered.map((r) => r.type).sort(), [
        "clipper:monitoring:PgBouncerMonitoring",
        "kubernetes:core/v1:ConfigMap",
      ]);
      const cm = byName("pgbouncer-monitoring-rules").inputs as { data: Record<string, string> };
      const rules = yaml.load(cm.data[RULES_FILE_KEY]) as {
        groups: { rules: { alert: string; expr: string }[] }[];
      };
      assert.equal(rules.groups[0].rules.length, 6);
      // thresholds follow the pool: 96% of 20 is 19.2, which would round up to the whole pool; one below it
      assert.match(rules.groups[0].rules[0].expr, /job="pgb".* >= 19$/);
    });

    it("THEN the ConfigMap has a fixed name, the rulesConfigMap output, and the label a rules sidecar selects", async () => {
      const cm = byName("pgbouncer-monitoring-rules").inputs as { metadata: Record<string, unknown> };
      assert.deepEqual(cm.metadata, {
        namespace: "clipper",
        name: "pgbouncer-monitoring-rules",
        labels: { prometheus_rule: "1" },
      });
      assert.equal(await promiseOf(c.rulesConfigMap), "pgbouncer-monitoring-rules");
    });

    it("THEN the scrape job is an output, selecting the pods and their metrics port", async () => {
      const job = (await promiseOf(c.scrapeJob)) as { job_name: string; scrape_interval: string };
      assert.equal(job.job_name, "pgb");
      assert.equal(job.scrape_interval, "10s");
      assert.equal(await promiseOf(c.dashboardUrl), undefined);
    });
  });

  it("GIVEN an empty pod selector THEN it is refused before anything is registered", async () => {
    registered.length = 0;
    assert.throws(
      () => new PgBouncerMonitoring("m", args({ podSelector: {} })),
      /podSelector must name at least one/,
    );
    await settled();
    assert.deepEqual(
      registered.filter((r) => r.type !== "clipper:monitoring:PgBouncerMonitoring"),
      [],
    );
  });
});
