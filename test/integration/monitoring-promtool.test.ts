/**
 * The rendered rules and every dashboard query through Prometheus's own promtool: `check rules` parses
 * them, `test rules` evaluates the alerts over input series built from the derived thresholds, so the
 * scenarios move with the pool settings. Fails when promtool is missing.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import {
  panelSpecs,
  queryContext,
  ALERT_NAMES,
  type AlertName,
  type RulePoolSettings,
  type RuleSettings,
  alertRuleGroup,
  renderRulesFile,
  MONITORING_DEFAULTS,
  deriveThresholds,
} from "../../components/monitoring";
import { POOL_DEFAULTS } from "../../components/pgbouncer";
import { promtool } from "../support/promtool";

interface InputSeries {
  series: string;
  values: string;
}

const INSTANCE = "10.0.0.7:9127";
const OTHER_INSTANCE = "10.0.0.8:9127";
const DATABASE = "clipper";

/** One test scenario: the pool's gauges and counter increments per scrape, and which alerts must fire. */
interface State {
  up: number;
  pgbouncerUp: number;
  /** Busy server connections per user (the pool has two users, so sums across users are exercised). */
  busy: [number, number];
  waiting: [number, number];
  maxWaitSeconds: number;
  /** Average wait per transaction, in seconds, over 100 transactions per scrape. */
  averageWait: number;
  cancels: number;
  clients: number;
  /** A second process with the same pool, e.g. another replica. */
  secondInstanceBusy?: [number, number];
  secondInstanceClients?: number;
  /** Leave out every series of the target (nothing scraped at all). */
  noTarget?: boolean;
}

function seriesFor(c: ScenarioContext, s: State, steps: number): InputSeries[] {
  if (s.noTarget) return [{ series: `unrelated_metric{job="other"}`, values: `1x${steps}` }];
  const job = c.mon.jobName;
  const target = (inst: string) => `job="${job}", instance="${inst}"`;
  const pool = (inst: string, user: string) => `{${target(inst)}, database="${DATABASE}", user="${user}"}`;
  const stats = `{${target(INSTANCE)}, database="${DATABASE}"}`;
  const flat = (v: number) => `${v}x${steps}`;
  const xactPerScrape = 100;
  const out: InputSeries[] = [
    { series: `up{${target(INSTANCE)}}`, values: flat(s.up) },
    { series: `pgbouncer_up{${target(INSTANCE)}}`, values: flat(s.pgbouncerUp) },
    {
      series: `pgbouncer_config_max_client_connections{${target(INSTANCE)}}`,
      values: flat(c.pool.maxClientConn),
    },
    {
      series: `pgbouncer_client_connections{${target(INSTANCE)}, database="${DATABASE}", user="app", application_name="", state="active"}`,
      values: flat(s.clients),
    },
    {
      series: `pgbouncer_stats_totals_sql_transactions_pooled_total${stats}`,
      values: `0+${xactPerScrape}x${steps}`,
    },
    {
      series: `pgbouncer_stats_totals_client_wait_seconds_total${stats}`,
      values: `0+${xactPerScrape * s.averageWait}x${steps}`,
    },
  ];
  ["app", "report"].forEach((user, i) => {
    out.push(
      { series: `pgbouncer_pools_server_active_connections${pool(INSTANCE, user)}`, values: flat(s.busy[i]) },
      {
        series: `pgbouncer_pools_client_waiting_connections${pool(INSTANCE, user)}`,
        values: flat(s.waiting[i]),
      },
      {
        series: `pgbouncer_pools_client_maxwait_seconds${pool(INSTANCE, user)}`,
        values: flat(s.maxWaitSeconds),
      },
      {
        series: `pgbouncer_pools_client_active_cancel_connections${pool(INSTANCE, user)}`,
        values: flat(i === 0 ? s.cancels : 0),
      },
      { series: `pgbouncer_pools_client_waiting_cancel_connections${pool(INSTANCE, user)}`, values: flat(0) },
    );
    if (s.secondInstanceBusy) {
      out.push({
        series: `pgbouncer_pools_server_active_connections${pool(OTHER_INSTANCE, user)}`,
        values: flat(s.secondInstanceBusy[i]),
      });
    }
  });
  if (s.secondInstanceClients !== undefined) {
    out.push(
      { series: `up{${target(OTHER_INSTANCE)}}`, values: flat(1) },
      {
        series: `pgbouncer_config_max_client_connections{${target(OTHER_INSTANCE)}}`,
        values: flat(c.pool.maxClientConn),
      },
      {
        series: `pgbouncer_client_connections{${target(OTHER_INSTANCE)}, database="${DATABASE}", user="app", application_name="", state="active"}`,
        values: flat(s.secondInstanceClients),
      },
    );
  }
  return out;
}

interface ScenarioContext {
  pool: RulePoolSettings;
  mon: RuleSettings;
}

type Expected = Partial<Record<AlertName, Record<string, string>[]>>;

interface Scenario {
  name: string;
  state: State;
  /** Alerts that must fire, with their labels; every other alert must stay silent. */
  fires: Expected;
}

function split(n: number): [number, number] {
  return [n - Math.floor(n / 2), Math.floor(n / 2)];
}

function scenarios(c: ScenarioContext): Scenario[] {
  const t = deriveThresholds(c.pool, c.mon.exhaustionServerConnections);
  const cap = t.serverCap;
  const T = c.pool.queryWaitTimeoutSeconds;
  const healthy: State = {
    up: 1,
    pgbouncerUp: 1,
    busy: split(Math.floor(t.utilizationServerConnections / 2)),
    waiting: [0, 0],
    maxWaitSeconds: 0,
    averageWait: t.averageWaitSeconds / 5,
    cancels: 0,
    clients: Math.floor(t.utilizationClientConnections / 4),
  };
  const pool = { instance: INSTANCE, database: DATABASE };
  const critical = (l: Record<string, string>) => [{ severity: "critical", ...l }];
  const warning = (l: Record<string, string>) => [{ severity: "warning", ...l }];
  return [
    { name: "a healthy pool", state: healthy, fires: {} },
    {
      name: "every pool value exactly at its threshold",
      state: {
        ...healthy,
        busy: split(Math.floor(t.utilizationServerConnections)),
        waiting: split(t.waitingClients),
        averageWait: t.averageWaitSeconds,
        clients: Math.floor(t.utilizationClientConnections),
        cancels: t.errorsPerSecond,
      },
      // on a small pool, 80% of the cap rounded down can already be one below the cap (4 of 5)
      fires:
        Math.floor(t.utilizationServerConnections) >= t.exhaustionServerConnections
          ? { PgBouncerPoolExhaustion: critical(pool) }
          : {},
    },
    ...(cap >= 2
      ? [
          {
            name: `busy servers one below the cap (${cap - 1} of ${cap}): exhaustion fires before the pool is full`,
            state: { ...healthy, busy: split(cap - 1) },
            fires: {
              PgBouncerPoolExhaustion: critical(pool),
              ...(cap - 1 > t.utilizationServerConnections
                ? { PgBouncerHighUtilization: warning(pool) }
                : {}),
            },
          },
        ]
      : []),
    {
      name: `busy servers one below the exhaustion threshold (${t.exhaustionServerConnections - 1})`,
      state: { ...healthy, busy: split(t.exhaustionServerConnections - 1) },
      fires:
        t.exhaustionServerConnections - 1 > t.utilizationServerConnections
          ? { PgBouncerHighUtilization: warning(pool) }
          : {},
    },
    {
      name: "busy servers at the exhaustion threshold (summed over users)",
      state: { ...healthy, busy: split(t.exhaustionServerConnections) },
      fires: {
        PgBouncerPoolExhaustion: critical(pool),
        ...(t.exhaustionServerConnections > t.utilizationServerConnections
          ? { PgBouncerHighUtilization: warning(pool) }
          : {}),
      },
    },
    {
      name: "two processes each one below exhaustion (limits are per process)",
      state: {
        ...healthy,
        busy: split(t.exhaustionServerConnections - 1),
        secondInstanceBusy: split(t.exhaustionServerConnections - 1),
      },
      fires:
        t.exhaustionServerConnections - 1 > t.utilizationServerConnections
          ? { PgBouncerHighUtilization: warning(pool).concat(warning({ ...pool, instance: OTHER_INSTANCE })) }
          : {},
    },
    {
      name: "busy servers just above utilization",
      state: { ...healthy, busy: split(Math.floor(t.utilizationServerConnections) + 1) },
      fires: {
        PgBouncerHighUtilization: warning(pool),
        ...(Math.floor(t.utilizationServerConnections) + 1 >= t.exhaustionServerConnections
          ? { PgBouncerPoolExhaustion: critical(pool) }
          : {}),
      },
    },
    {
      name: "client slots above utilization of max_client_conn",
      state: { ...healthy, clients: Math.floor(t.utilizationClientConnections) + 1 },
      fires: { PgBouncerHighUtilization: warning({ instance: INSTANCE }) },
    },
    {
      name: "client slots high only summed over two processes (matched on instance)",
      state: {
        ...healthy,
        clients: Math.floor(t.utilizationClientConnections / 2) + 1,
        secondInstanceClients: Math.floor(t.utilizationClientConnections / 2) + 1,
      },
      fires: {},
    },
    {
      name: "average wait twice the threshold",
      state: { ...healthy, averageWait: t.averageWaitSeconds * 2 },
      fires: { PgBouncerHighWaitTime: warning(pool) },
    },
    {
      name: "waiting clients one above the threshold",
      state: { ...healthy, waiting: split(t.waitingClients + 1) },
      fires: { PgBouncerWaitingClients: warning(pool) },
    },
    {
      name: "PgBouncer unreachable for the exporter",
      state: { ...healthy, pgbouncerUp: 0 },
      fires: { PgBouncerDown: critical({ instance: INSTANCE, job: c.mon.jobName }) },
    },
    {
      name: "the exporter unreachable",
      state: { ...healthy, up: 0 },
      fires: { PgBouncerDown: critical({ instance: INSTANCE, job: c.mon.jobName }) },
    },
    {
      name: "no target at all",
      state: { ...healthy, noTarget: true },
      fires: { PgBouncerDown: critical({ job: c.mon.jobName }) },
    },
    {
      name: "cancel requests above the errors threshold",
      state: { ...healthy, cancels: t.errorsPerSecond + 1 },
      fires: { PgBouncerHighErrors: warning(pool) },
    },
    ...(T > 0
      ? [
          {
            name: "waiters at query_wait_timeout: twice the errors threshold would time out",
            state: { ...healthy, waiting: split(2 * T * t.errorsPerSecond), maxWaitSeconds: T - 1 },
            fires: {
              PgBouncerHighErrors: warning(pool),
              ...(2 * T * t.errorsPerSecond > t.waitingClients
                ? { PgBouncerWaitingClients: warning(pool) }
                : {}),
            },
          },
          {
            name: "as many waiters, but far from query_wait_timeout",
            state: { ...healthy, waiting: split(2 * T * t.errorsPerSecond), maxWaitSeconds: 0 },
            fires:
              2 * T * t.errorsPerSecond > t.waitingClients ? { PgBouncerWaitingClients: warning(pool) } : {},
          },
        ]
      : []),
  ];
}

function unitTestFile(c: ScenarioContext, rulesFile: string): { text: string; count: number } {
  const group = alertRuleGroup(c.pool, c.mon);
  const interval = c.mon.scrapeIntervalSeconds;
  const longestFor = Math.max(...group.rules.map((r) => parseInt(r.for, 10)));
  // past every `for`, the rate window and two evaluations
  const evalSeconds = longestFor + c.mon.rateWindowSeconds + 2 * c.mon.evaluationIntervalSeconds;
  const steps = Math.ceil(evalSeconds / interval) + 1;
  const list = scenarios(c);
  const tests = list.map((s) => ({
    name: s.name,
    interval: `${interval}s`,
    input_series: seriesFor(c, s.state, steps),
    alert_rule_test: ALERT_NAMES.map((alertname) => ({
      eval_time: `${evalSeconds}s`,
      alertname,
      exp_alerts: (s.fires[alertname] ?? []).map((labels) => ({ exp_labels: labels })),
    })),
  }));
  assert.equal(group.interval, `${c.mon.evaluationIntervalSeconds}s`);
  return {
    text: yaml.dump(
      { rule_files: [rulesFile], evaluation_interval: group.interval, tests },
      { lineWidth: -1, noRefs: true },
    ),
    count: list.length,
  };
}

/** The rules with their annotation templates removed: promtool compares expanded annotations verbatim. */
function withoutAnnotations(text: string): string {
  const doc = yaml.load(text) as { groups: { rules: Record<string, unknown>[] }[] };
  for (const g of doc.groups) for (const r of g.rules) delete r.annotations;
  return yaml.dump(doc, { lineWidth: -1 });
}

const MON: RuleSettings = { ...MONITORING_DEFAULTS, runbookBaseUrl: "https://runbooks.example/pgbouncer" };
const VARIANTS: { name: string; c: ScenarioContext }[] = [
  { name: "default pool (cap 50, max_client_conn 500)", c: { pool: POOL_DEFAULTS, mon: MON } },
  {
    name: "small pool (cap 5, max_client_conn 20, query_wait_timeout 30) with short for durations",
    c: {
      pool: { maxDbConnections: 5, maxClientConn: 20, queryWaitTimeoutSeconds: 30 },
      mon: {
        ...MON,
        jobName: "pgbouncer-staging",
        scrapeIntervalSeconds: 5,
        evaluationIntervalSeconds: 5,
        rateWindowSeconds: 20,
        for: {
          poolExhaustion: 10,
          highWaitTime: 15,
          waitingClients: 10,
          down: 5,
          highErrors: 20,
          highUtilization: 30,
        },
      },
    },
  },
  {
    name: "staging's pool (cap 20: exhaustion at 19, one below the cap)",
    c: { pool: { ...POOL_DEFAULTS, maxDbConnections: 20, maxClientConn: 200 }, mon: MON },
  },
  {
    name: "a one-connection pool with its threshold set explicitly (cap 1, exhaustion at 1)",
    c: {
      pool: { ...POOL_DEFAULTS, maxDbConnections: 1, maxClientConn: 20 },
      mon: { ...MON, exhaustionServerConnections: 1 },
    },
  },
  {
    name: "an explicit threshold on the default pool (cap 50, exhaustion at 40)",
    c: { pool: POOL_DEFAULTS, mon: { ...MON, exhaustionServerConnections: 40 } },
  },
  {
    name: "query_wait_timeout off",
    c: { pool: { ...POOL_DEFAULTS, queryWaitTimeoutSeconds: 0 }, mon: MON },
  },
];

describe("monitoring rules through promtool", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-promtool-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const v of VARIANTS) {
    describe(v.name, () => {
      it("the rendered rules file passes `promtool check rules` with six rules", () => {
        fs.writeFileSync(path.join(dir, "rules.yml"), renderRulesFile(alertRuleGroup(v.c.pool, v.c.mon)));
        const r = promtool(["check", "rules", "rules.yml"], dir);
        assert.ok(r.ok, r.output);
        assert.match(r.output, /SUCCESS: 6 rules found/);
      });

      it("each alert fires on its condition and the others stay silent (`promtool test rules`)", () => {
        const rules = renderRulesFile(alertRuleGroup(v.c.pool, v.c.mon));
        fs.writeFileSync(path.join(dir, "rules-test.yml"), withoutAnnotations(rules));
        const { text, count } = unitTestFile(v.c, "rules-test.yml");
        fs.writeFileSync(path.join(dir, "unit.yml"), text);
        const r = promtool(["test", "rules", "unit.yml"], dir);
        assert.ok(r.ok, r.output);
        assert.match(r.output, /SUCCESS/);
        assert.ok(count >= 13, `only ${count} scenarios`);
      });

      it("every dashboard query parses (each as a recording rule through `promtool check rules`)", () => {
        const specs = panelSpecs(queryContext(v.c.pool, v.c.mon));
        const rules = specs.flatMap((p, i) =>
          p.queries.map((q, j) => ({ record: `dashboard:panel${i + 1}:query${j + 1}`, expr: q.expr })),
        );
        fs.writeFileSync(path.join(dir, "panels.yml"), yaml.dump({ groups: [{ name: "panels", rules }] }));
        const r = promtool(["check", "rules", "panels.yml"], dir);
        assert.ok(r.ok, r.output);
        assert.match(r.output, new RegExp(`SUCCESS: ${rules.length} rules found`));
      });
    });
  }

  it("a wrong expectation makes the unit test fail (the check can fail)", () => {
    const c = VARIANTS[0].c;
    fs.writeFileSync(
      path.join(dir, "rules-test.yml"),
      withoutAnnotations(renderRulesFile(alertRuleGroup(c.pool, c.mon))),
    );
    const { text } = unitTestFile(c, "rules-test.yml");
    const doc = yaml.load(text) as { tests: { alert_rule_test: { exp_alerts: unknown[] }[] }[] };
    // claim that the healthy pool raises PgBouncerPoolExhaustion
    doc.tests[0].alert_rule_test[0].exp_alerts = [{ exp_labels: { severity: "critical" } }];
    fs.writeFileSync(path.join(dir, "unit-wrong.yml"), yaml.dump(doc, { lineWidth: -1 }));
    const r = promtool(["test", "rules", "unit-wrong.yml"], dir);
    assert.equal(r.ok, false, r.output);
  });

  it("the published label-set trap matches nothing, which is why the client branch matches on instance", () => {
    const c = VARIANTS[0].c;
    const trap = {
      groups: [
        {
          name: "trap",
          rules: [
            {
              alert: "Trap",
              expr: `sum(pgbouncer_client_connections) >= pgbouncer_config_max_client_connections`,
            },
          ],
        },
      ],
    };
    fs.writeFileSync(path.join(dir, "trap.yml"), yaml.dump(trap));
    const steps = 10;
    const unit = {
      rule_files: ["trap.yml"],
      evaluation_interval: "10s",
      tests: [
        {
          interval: "10s",
          input_series: [
            {
              series: `pgbouncer_client_connections{job="x", instance="a", database="d", user="u", application_name="", state="active"}`,
              values: `${c.pool.maxClientConn}x${steps}`,
            },
            {
              series: `pgbouncer_config_max_client_connections{job="x", instance="a"}`,
              values: `${c.pool.maxClientConn}x${steps}`,
            },
          ],
          alert_rule_test: [{ eval_time: "60s", alertname: "Trap", exp_alerts: [] }],
        },
      ],
    };
    fs.writeFileSync(path.join(dir, "trap-unit.yml"), yaml.dump(unit, { lineWidth: -1 }));
    const r = promtool(["test", "rules", "trap-unit.yml"], dir);
    assert.ok(r.ok, `the trap expression unexpectedly fired: ${r.output}`);
  });
});
