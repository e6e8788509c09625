import { strict as assert } from "assert";
import {
  buildDashboard,
  panelSpecs,
  EXPORTER_METRICS,
  checkExpression,
  labelNamesIn,
  labelsOf,
  metricNamesIn,
  queryContext,
  alertRuleGroup,
  MONITORING_DEFAULTS,
} from "../../components/monitoring";
import { POOL_DEFAULTS } from "../../components/pgbouncer";

const MON = { ...MONITORING_DEFAULTS, runbookBaseUrl: "https://runbooks.example/pgbouncer" };

describe("monitoring metrics", () => {
  describe("metricNamesIn", () => {
    it("GIVEN functions, aggregations, keywords and label lists THEN only metric names remain", () => {
      assert.deepEqual(
        metricNamesIn(
          'sum by (instance, database) (rate(pgbouncer_stats_totals_queries_pooled_total{job="x", state=~"a|b"}[5m] offset 1m))' +
            " / on (instance) group_left (version) pgbouncer_version_info > bool 0.5e3 or absent(up) and vector(1)",
        ),
        ["pgbouncer_stats_totals_queries_pooled_total", "pgbouncer_version_info", "up"],
      );
    });
    it("GIVEN the prefix form `sum without (x) (m)` and a quoted metric-like string THEN neither leaks", () => {
      assert.deepEqual(
        metricNamesIn('sum without (user) (m_one) + label_replace(m_two, "dst", "fake_metric", "", "")'),
        ["m_one", "m_two"],
      );
    });
    it("GIVEN the pre-0.11 names of published rules THEN the checker refuses them", () => {
      const problems = checkExpression("rate(pgbouncer_stats_queries_total[1m]) > 1");
      assert.deepEqual(problems, [
        "pgbouncer_stats_queries_total is not exported by pgbouncer_exporter 0.12.1",
      ]);
    });
  });

  describe("label checks", () => {
    it("lists the labels of matchers and of by/on lists", () => {
      assert.deepEqual(labelNamesIn('sum by (instance) (a{database="x"}) / on (job) b'), [
        "database",
        "instance",
        "job",
      ]);
    });
    it("GIVEN a by-label the aggregated metric lacks THEN it is reported", () => {
      assert.deepEqual(
        checkExpression("sum by (instance, database) (pgbouncer_config_max_client_connections)"),
        ["by label database is not on pgbouncer_config_max_client_connections"],
      );
    });
    it("GIVEN an on-label one side lacks THEN it is reported", () => {
      assert.deepEqual(
        checkExpression(
          "sum by (database) (pgbouncer_client_connections) / on (database) pgbouncer_config_max_client_connections",
        ),
        ["on label database is not on pgbouncer_config_max_client_connections"],
      );
    });
    it("GIVEN a matcher on a label the metric lacks THEN it is reported", () => {
      assert.deepEqual(checkExpression('pgbouncer_databases_pool_size{database="x", user="y"}'), [
        "label user is not on pgbouncer_databases_pool_size",
      ]);
    });
    it("adds the target labels to the exporter's own", () => {
      assert.deepEqual(labelsOf("pgbouncer_pools_client_waiting_connections"), [
        "database",
        "user",
        "instance",
        "job",
      ]);
      assert.throws(() => labelsOf("pgbouncer_stats_queries_total"), /not exported/);
    });
  });

  describe("every alert and panel query", () => {
    const variants = [
      { name: "defaults", pool: POOL_DEFAULTS },
      { name: "query_wait_timeout off", pool: { ...POOL_DEFAULTS, queryWaitTimeoutSeconds: 0 } },
    ];
    for (const v of variants) {
      it(`(${v.name}) names only exported metrics with matching labels`, () => {
        const group = alertRuleGroup(v.pool, MON);
        const exprs = [
          ...group.rules.map((r) => ({ where: r.alert, expr: r.expr })),
          ...panelSpecs(queryContext(v.pool, MON)).flatMap((p) =>
            p.queries.map((q) => ({ where: p.title, expr: q.expr })),
          ),
        ];
        assert.equal(exprs.length, 6 + 18);
        const problems = exprs.flatMap((e) => checkExpression(e.expr).map((p) => `${e.where}: ${p}`));
        assert.deepEqual(problems, []);
        const used = new Set(exprs.flatMap((e) => metricNamesIn(e.expr)));
        for (const m of used) assert.ok(m === "up" || m in EXPORTER_METRICS, m);
      });
    }
    it("the dashboard JSON carries exactly the checked queries", () => {
      const c = queryContext(POOL_DEFAULTS, MON);
      const json = buildDashboard({ uid: "u", title: "t", datasourceName: "Prometheus", context: c });
      const fromJson = (json.panels ?? []).flatMap((p) =>
        "targets" in p ? (p.targets ?? []).map((t) => (t as unknown as { expr: string }).expr) : [],
      );
      assert.deepEqual(
        fromJson,
        panelSpecs(c).flatMap((p) => p.queries.map((q) => q.expr)),
      );
    });
  });
});
