import { strict as assert } from "assert";
import * as yaml from "js-yaml";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import {
  DATASOURCE_VARIABLE,
  buildDashboard,
  panelSpecs,
  queryContext,
  ALERT_NAMES,
  alertRuleGroup,
  prometheusRuleManifest,
  renderRulesFile,
  kubernetesScrapeJob,
  podLabelMeta,
  podMonitorSpec,
  scrapeAnnotations,
  staticScrapeJob,
  MONITORING_DEFAULTS,
  type MonitoringSettings,
  deriveThresholds,
} from "../../components/monitoring";
import { POOL_DEFAULTS, type PoolSettings } from "../../components/pgbouncer";

const MON: MonitoringSettings = {
  ...MONITORING_DEFAULTS,
  runbookBaseUrl: "https://runbooks.example/pgbouncer",
};
const SMALL: PoolSettings = {
  ...POOL_DEFAULTS,
  defaultPoolSize: 5,
  minPoolSize: 0,
  maxDbConnections: 5,
  maxClientConn: 20,
};

describe("monitoring alert rules", () => {
  const group = alertRuleGroup(POOL_DEFAULTS, MON);

  it("has the six alerts of the spec, in order, with severities", () => {
    assert.deepEqual(
      group.rules.map((r) => [r.alert, r.labels.severity]),
      [
        ["PgBouncerPoolExhaustion", "critical"],
        ["PgBouncerHighWaitTime", "warning"],
        ["PgBouncerWaitingClients", "warning"],
        ["PgBouncerDown", "critical"],
        ["PgBouncerHighErrors", "warning"],
        ["PgBouncerHighUtilization", "warning"],
      ],
    );
    assert.deepEqual(
      group.rules.map((r) => r.alert),
      [...ALERT_NAMES],
    );
  });

  it("links each alert to its runbook anchor and gives summary and description", () => {
    for (const r of group.rules) {
      assert.equal(r.annotations.runbook_url, `https://runbooks.example/pgbouncer#${r.alert.toLowerCase()}`);
      assert.ok(r.annotations.summary.length > 10, r.alert);
      assert.ok(r.annotations.description.length > 30, r.alert);
    }
    const errors = group.rules.find((r) => r.alert === "PgBouncerHighErrors");
    assert.match(errors?.annotations.description ?? "", /no errors metric; this alert uses a named proxy/);
  });

  it("takes the for durations and the evaluation interval from the settings", () => {
    const g = alertRuleGroup(POOL_DEFAULTS, {
      ...MON,
      evaluationIntervalSeconds: 15,
      for: {
        poolExhaustion: 1,
        highWaitTime: 2,
        waitingClients: 3,
        down: 4,
        highErrors: 5,
        highUtilization: 6,
      },
    });
    assert.equal(g.interval, "15s");
    assert.deepEqual(
      g.rules.map((r) => r.for),
      ["1s", "2s", "3s", "4s", "5s", "6s"],
    );
    assert.deepEqual(
      group.rules.map((r) => r.for),
      ["120s", "300s", "120s", "60s", "300s", "600s"],
    );
  });

  it("derives the numbers in the expressions from the pool settings", () => {
    const exhaustion = (p: PoolSettings) => alertRuleGroup(p, MON).rules[0].expr;
    assert.match(exhaustion(POOL_DEFAULTS), / >= 48$/);
    assert.match(exhaustion(SMALL), / >= 4$/); // 96% of 5 rounds up to 5, the full pool: one below instead
    assert.match(alertRuleGroup(SMALL, { ...MON, exhaustionServerConnections: 3 }).rules[0].expr, / >= 3$/);
    const util = alertRuleGroup(SMALL, MON).rules[5].expr;
    assert.match(util, /\) \/ 5 > 0\.8 or /);
    assert.match(alertRuleGroup(POOL_DEFAULTS, MON).rules[1].expr, / > 0\.05$/);
    assert.match(alertRuleGroup(POOL_DEFAULTS, MON).rules[2].expr, / > 10$/);
    // query_wait_timeout 120 s, two 10 s scrapes before it
    assert.match(alertRuleGroup(POOL_DEFAULTS, MON).rules[4].expr, /\/ 120 \* on .*>= bool 100\) > 1 or /);
  });

  it("selects on the job name of the settings in every expression", () => {
    const g = alertRuleGroup(POOL_DEFAULTS, { ...MON, jobName: "pgb-prod" });
    for (const r of g.rules) {
      assert.ok(r.expr.includes('job="pgb-prod"'), r.alert);
      assert.ok(!r.expr.includes('job="pgbouncer"'), r.alert);
    }
  });

  it("renders a rules file that reads back as the group", () => {
    assert.deepEqual(yaml.load(renderRulesFile(group)), { groups: [group] });
  });

  it("renders a PrometheusRule that the operator's schema accepts, with the selector labels", () => {
    const manifest = prometheusRuleManifest("pgbouncer", "clipper", MON.ruleLabels, group);
    // a round trip through JSON drops the readonly types; validate() checks the schema at run time
    new PrometheusRule(
      JSON.parse(JSON.stringify(manifest)) as ConstructorParameters<typeof PrometheusRule>[0],
    ).validate();
    assert.deepEqual(manifest.metadata.labels, { release: "kube-prometheus-stack" });
    assert.deepEqual(manifest.spec, { groups: [group] });
  });
});

describe("monitoring dashboard", () => {
  const c = queryContext(POOL_DEFAULTS, MON);
  const dash = buildDashboard({ uid: "pgb", title: "PgBouncer", datasourceName: "Mimir", context: c });

  it("has the ten panels of the spec, four of them stats", () => {
    assert.deepEqual(
      (dash.panels ?? []).map((p) => [p.title, (p as { type: string }).type]),
      [
        ["Active client connections", "timeseries"],
        ["Server connections", "timeseries"],
        ["Pool size vs limits", "timeseries"],
        ["Query rate", "timeseries"],
        ["Average query duration", "timeseries"],
        ["Connection wait time", "timeseries"],
        ["Total client connections", "stat"],
        ["Pool utilization %", "stat"],
        ["Waiting clients", "stat"],
        ["Connection errors", "stat"],
      ],
    );
    assert.equal(dash.uid, "pgb");
  });

  it("makes the datasource a variable that every panel and query uses", () => {
    const v = dash.templating?.list?.[0] as { type: string; name: string; query: string; current: unknown };
    assert.deepEqual([v.type, v.name, v.query], ["datasource", DATASOURCE_VARIABLE, "prometheus"]);
    assert.deepEqual(v.current, { text: "Mimir", value: "Mimir" });
    for (const p of dash.panels ?? []) {
      assert.deepEqual((p as { datasource: unknown }).datasource, {
        type: "prometheus",
        uid: "${datasource}",
      });
      for (const t of (p as unknown as { targets: { datasource: unknown }[] }).targets) {
        assert.deepEqual(t.datasource, { type: "prometheus", uid: "${datasource}" });
      }
    }
  });

  it("sets panel thresholds to the alert thresholds, moving with the pool", () => {
    const cases: [PoolSettings, MonitoringSettings, number][] = [
      [POOL_DEFAULTS, MON, 48],
      [SMALL, MON, 4],
      [POOL_DEFAULTS, { ...MON, exhaustionServerConnections: 45 }, 45],
    ];
    for (const [pool, mon, exhaustion] of cases) {
      const t = deriveThresholds(pool, mon.exhaustionServerConnections);
      assert.equal(t.exhaustionServerConnections, exhaustion);
      const d = buildDashboard({
        uid: "u",
        title: "t",
        datasourceName: "P",
        context: queryContext(pool, mon),
      });
      const steps = (title: string) =>
        (d.panels ?? [])
          .flatMap((p) => ("fieldConfig" in p ? [p] : []))
          .find((p) => p.title === title)
          ?.fieldConfig?.defaults?.thresholds?.steps.map((s) => s.value);
      assert.deepEqual(steps("Server connections"), [
        null,
        t.utilizationServerConnections,
        t.exhaustionServerConnections,
      ]);
      assert.deepEqual(steps("Pool utilization %"), [
        null,
        0.8,
        t.exhaustionServerConnections / pool.maxDbConnections,
      ]);
      assert.deepEqual(steps("Pool size vs limits"), [null, pool.maxDbConnections]);
      assert.deepEqual(steps("Connection wait time"), [null, 0.05]);
      assert.deepEqual(steps("Waiting clients"), [null, 11]);
      assert.deepEqual(steps("Total client connections"), [null, pool.maxClientConn * 0.8]);
      assert.deepEqual(steps("Connection errors"), [null, 1]);
    }
  });

  it("draws the same quantities the alerts compare", () => {
    const rules = alertRuleGroup(POOL_DEFAULTS, MON).rules;
    const specs = panelSpecs(c);
    const exprOf = (title: string) => specs.find((p) => p.title === title)?.queries[0].expr ?? "";
    assert.ok(rules[0].expr.startsWith(exprOf("Server connections")));
    assert.ok(rules[1].expr.startsWith(exprOf("Connection wait time")));
    assert.ok(rules[2].expr.startsWith(exprOf("Waiting clients")));
    assert.ok(rules[5].expr.startsWith(exprOf("Pool utilization %")));
    assert.ok(rules[4].expr.startsWith(exprOf("Connection errors")));
  });
});

describe("monitoring scrape config", () => {
  const target = { namespace: "clipper", podSelector: { "app.kubernetes.io/name": "pgbouncer" } };

  it("builds a PodMonitor the operator's schema accepts: 10 s, port metrics, the job renamed", () => {
    const spec = podMonitorSpec(MON, target);
    new PodMonitor({ metadata: { name: "pgbouncer", namespace: "clipper" }, spec }).validate();
    assert.deepEqual(spec, {
      selector: { matchLabels: { "app.kubernetes.io/name": "pgbouncer" } },
      namespaceSelector: { matchNames: ["clipper"] },
      podMetricsEndpoints: [
        {
          port: "metrics",
          path: "/metrics",
          interval: "10s",
          relabelings: [{ action: "replace", targetLabel: "job", replacement: "pgbouncer" }],
        },
      ],
    });
    assert.equal(
      podMonitorSpec({ ...MON, scrapeIntervalSeconds: 30 }, { ...target, portNames: ["exp"] })
        .podMetricsEndpoints[0].port,
      "exp",
    );
  });

  it("annotates pods only for a plain Prometheus", () => {
    assert.deepEqual(scrapeAnnotations({ mode: "plain" }, 9127), {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "9127",
      "prometheus.io/path": "/metrics",
    });
    assert.deepEqual(scrapeAnnotations({ mode: "prometheus-operator" }, 9127), {});
  });

  it("builds a kubernetes_sd scrape job keeping only the selected pods' metrics port", () => {
    const job = kubernetesScrapeJob({ ...MON, scrapeIntervalSeconds: 15 }, target);
    assert.equal(job.job_name, "pgbouncer");
    assert.equal(job.scrape_interval, "15s");
    assert.deepEqual(job.kubernetes_sd_configs, [{ role: "pod", namespaces: { names: ["clipper"] } }]);
    assert.deepEqual(job.relabel_configs.slice(0, 3), [
      {
        source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        action: "keep",
        regex: "true",
      },
      {
        source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        action: "keep",
        regex: "pgbouncer",
      },
      { source_labels: ["__meta_kubernetes_pod_container_port_name"], action: "keep", regex: "metrics" },
    ]);
    assert.equal(podLabelMeta("a.b/c-d"), "__meta_kubernetes_pod_label_a_b_c_d");
  });

  it("keeps every exporter port of a multi-process pod, in both modes", () => {
    const many = { ...target, portNames: ["metrics", "metrics-2"] };
    const job = kubernetesScrapeJob(MON, many);
    assert.deepEqual(job.relabel_configs[2], {
      source_labels: ["__meta_kubernetes_pod_container_port_name"],
      action: "keep",
      regex: "metrics|metrics-2",
    });
    assert.deepEqual(
      podMonitorSpec(MON, many).podMetricsEndpoints.map((e) => e.port),
      ["metrics", "metrics-2"],
    );
  });

  it("builds the same job over static targets", () => {
    assert.deepEqual(staticScrapeJob(MON, ["127.0.0.1:9127"]), {
      job_name: "pgbouncer",
      scrape_interval: "10s",
      metrics_path: "/metrics",
      static_configs: [{ targets: ["127.0.0.1:9127"] }],
    });
  });
});
