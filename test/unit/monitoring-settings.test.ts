import { strict as assert } from "assert";
import { ConfigError, IssueList, readSection } from "../../components/common";
import {
  MONITORING,
  MONITORING_DEFAULTS,
  type MonitoringSettings,
  ALERT_POLICY,
  deriveThresholds,
  derivedExhaustion,
  exhaustionRange,
} from "../../components/monitoring";
import { POOL_DEFAULTS } from "../../components/pgbouncer";
import { parseSettings, loadStackSettings } from "../../stacks/settings";
import { stackFileConfig, rawStackConfig } from "../../stacks/stack-file";

const KEY = "clipper-pgbouncer:monitoring";
const RUNBOOK = "https://runbooks.example/pgbouncer";

function read(raw: unknown): MonitoringSettings {
  const issues = new IssueList();
  const m = readSection(MONITORING, KEY, raw, issues);
  issues.throwIfAny();
  return m;
}

function refused(raw: unknown): string[] {
  try {
    read(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.key}: ${i.message}`);
    throw e;
  }
  assert.fail("settings were accepted");
}

describe("monitoring settings", () => {
  it("GIVEN only the runbook URL THEN every other setting takes its default", () => {
    assert.deepEqual(read({ runbookBaseUrl: RUNBOOK }), { ...MONITORING_DEFAULTS, runbookBaseUrl: RUNBOOK });
  });

  it("GIVEN values for every field THEN the caller's values win", () => {
    const raw = {
      mode: "plain",
      ruleLabels: { prometheus: "main" },
      podMonitorLabels: { team: "db" },
      rulesConfigMapLabels: { "rules.example/load": "yes" },
      jobName: "pgbouncer-staging",
      scrapeIntervalSeconds: 15,
      evaluationIntervalSeconds: 15,
      rateWindowSeconds: 120,
      dashboard: false,
      grafanaFolder: "Staging",
      dashboardUid: "pgb-staging",
      datasourceName: "Mimir",
      runbookBaseUrl: RUNBOOK,
      for: {
        poolExhaustion: 1,
        highWaitTime: 2,
        waitingClients: 3,
        down: 4,
        highErrors: 5,
        highUtilization: 0,
      },
    };
    assert.deepEqual(read(raw), raw);
  });

  const cases: [string, Record<string, unknown>, string][] = [
    [
      "runbookBaseUrl missing",
      { runbookBaseUrl: undefined },
      `${KEY}.runbookBaseUrl: is required (an http(s) URL without a #fragment)`,
    ],
    [
      "runbookBaseUrl not a URL",
      { runbookBaseUrl: "runbooks/pgbouncer" },
      `${KEY}.runbookBaseUrl: is "runbooks/pgbouncer"; must be an http(s) URL without a #fragment`,
    ],
    [
      "runbookBaseUrl with a fragment",
      { runbookBaseUrl: `${RUNBOOK}#top` },
      `${KEY}.runbookBaseUrl: is "${RUNBOOK}#top"; must be an http(s) URL without a #fragment`,
    ],
    [
      "unknown mode",
      { mode: "operator" },
      `${KEY}.mode: is "operator"; must be one of "prometheus-operator", "plain"`,
    ],
    [
      "empty ruleLabels",
      { ruleLabels: {} },
      `${KEY}.ruleLabels: is {}; must be a non-empty map of label keys to values`,
    ],
    [
      "bad podMonitorLabels value",
      { podMonitorLabels: { release: "kube prometheus" } },
      `${KEY}.podMonitorLabels.release: is "kube prometheus"; label keys and values must be valid Kubernetes labels`,
    ],
    [
      "bad jobName",
      { jobName: "pg bouncer" },
      `${KEY}.jobName: is "pg bouncer"; must be a Prometheus job name such as pgbouncer`,
    ],
    [
      "scrape interval 0",
      { scrapeIntervalSeconds: 0 },
      `${KEY}.scrapeIntervalSeconds: is 0; must be an integer from 1 to 300`,
    ],
    [
      "evaluation interval too long",
      { evaluationIntervalSeconds: 301 },
      `${KEY}.evaluationIntervalSeconds: is 301; must be an integer from 1 to 300`,
    ],
    [
      "rate window not an integer",
      { rateWindowSeconds: "1m" },
      `${KEY}.rateWindowSeconds: is "1m"; must be an integer from 4 to 3600`,
    ],
    [
      "rate window under 4 scrapes",
      { scrapeIntervalSeconds: 30, evaluationIntervalSeconds: 30, rateWindowSeconds: 60 },
      `${KEY}.rateWindowSeconds: is 60; must be at least 4 x ${KEY}.scrapeIntervalSeconds (120), or rate() sees too few samples and gaps read as no data`,
    ],
    [
      "evaluation faster than scrapes",
      { scrapeIntervalSeconds: 15, evaluationIntervalSeconds: 10 },
      `${KEY}.evaluationIntervalSeconds: is 10; must be at least ${KEY}.scrapeIntervalSeconds (15): evaluating between scrapes only repeats the same samples`,
    ],
    ["dashboard not a boolean", { dashboard: "yes" }, `${KEY}.dashboard: is "yes"; must be true or false`],
    ["empty folder", { grafanaFolder: " " }, `${KEY}.grafanaFolder: is " "; must be a non-empty string`],
    [
      "dashboard uid too long",
      { dashboardUid: "x".repeat(41) },
      `${KEY}.dashboardUid: is "${"x".repeat(41)}"; must be 1 to 40 letters, digits, - or _`,
    ],
    [
      "datasource not a string",
      { datasourceName: 3 },
      `${KEY}.datasourceName: is 3; must be a non-empty string`,
    ],
    ["negative for", { for: { down: -1 } }, `${KEY}.for.down: is -1; must be an integer from 0 to 86400`],
    ["for not an object", { for: 60 }, `${KEY}.for: must be an object, got 60`],
    ["unknown for key", { for: { exhaustion: 60 } }, `${KEY}.for.exhaustion: is not a known setting`],
    ["unknown field", { scrapeInterval: 10 }, `${KEY}.scrapeInterval: is not a known setting`],
  ];
  for (const [name, raw, message] of cases) {
    it(`GIVEN ${name} THEN it is refused naming the key`, () => {
      assert.deepEqual(refused({ runbookBaseUrl: RUNBOOK, ...raw }), [message]);
    });
  }
  it("GIVEN a non-object section THEN it is refused", () => {
    assert.deepEqual(refused("prometheus-operator"), [
      `${KEY}: must be an object, got "prometheus-operator"`,
      `${KEY}.runbookBaseUrl: is required (an http(s) URL without a #fragment)`,
    ]);
  });
});

describe("monitoring thresholds", () => {
  it("GIVEN the spec's cap of 50 THEN exhaustion is at 48 and utilization above 40", () => {
    const t = deriveThresholds(POOL_DEFAULTS);
    assert.equal(POOL_DEFAULTS.maxDbConnections, 50);
    assert.equal(t.exhaustionServerConnections, 48);
    assert.equal(t.utilizationServerConnections, 40);
    assert.equal(t.utilizationClientConnections, 400);
  });
  it("GIVEN other caps THEN the thresholds move with them", () => {
    const at = (maxDbConnections: number, maxClientConn = 100) =>
      deriveThresholds({ maxDbConnections, maxClientConn });
    assert.equal(at(25).exhaustionServerConnections, 24);
    assert.equal(at(100).exhaustionServerConnections, 96);
    assert.equal(at(10).utilizationServerConnections, 8);
    assert.equal(at(10, 250).utilizationClientConnections, 200);
    assert.equal(at(10).serverCap, 10);
  });

  describe("the exhaustion threshold lies below the cap at every pool size", () => {
    const at = (maxDbConnections: number, explicit?: number) =>
      deriveThresholds({ maxDbConnections, maxClientConn: 500 }, explicit);
    const cases: [number, number, string][] = [
      [50, 48, "96% of max_db_connections 50"],
      [20, 19, "one below max_db_connections 20"], // 96% is 19.2, which rounds up to the whole pool
      [5, 4, "one below max_db_connections 5"], // 4.8 would round up to 5
      [2, 1, "one below max_db_connections 2"],
    ];
    for (const [cap, threshold, basis] of cases) {
      it(`GIVEN a cap of ${cap} THEN exhaustion is at ${threshold} (${basis})`, () => {
        const t = at(cap);
        assert.equal(t.exhaustionServerConnections, threshold);
        assert.equal(t.exhaustionBasis, basis);
        assert.ok(t.exhaustionServerConnections <= cap - 1);
        assert.equal(derivedExhaustion(cap), threshold);
      });
    }
    it("GIVEN every cap from 2 to 200 THEN the derived threshold is 1 to cap - 1 and never below 96% rounded down", () => {
      for (let cap = 2; cap <= 200; cap++) {
        const e = at(cap).exhaustionServerConnections;
        assert.ok(e >= 1 && e <= cap - 1, `cap ${cap}: ${e}`);
        assert.ok(e >= Math.floor((cap * ALERT_POLICY.exhaustionPercent) / 100), `cap ${cap}: ${e}`);
      }
    });
    it("GIVEN a cap of 1 THEN no threshold is derived: the stack must set one", () => {
      assert.equal(derivedExhaustion(1), undefined);
      assert.throws(() => at(1), /server cap of 1 leaves no busy count below it/);
      assert.deepEqual(exhaustionRange(1), { min: 1, max: 1 });
    });
    it("GIVEN an explicit threshold THEN it wins at 1, 5, 20 and 50", () => {
      for (const [cap, explicit] of [
        [1, 1],
        [5, 3],
        [20, 15],
        [50, 45],
      ]) {
        const t = at(cap, explicit);
        assert.equal(t.exhaustionServerConnections, explicit);
        assert.equal(t.exhaustionBasis, `set by the stack; max_db_connections ${cap}`);
        assert.deepEqual(exhaustionRange(cap), { min: 1, max: Math.max(1, cap - 1) });
      }
    });
  });

  describe("monitoring.exhaustionServerConnections against the pool (whole-stack validation)", () => {
    const prod = rawStackConfig(stackFileConfig("prod"));
    const stack = (pool: Record<string, number>, monitoring: Record<string, unknown>) => ({
      ...prod,
      pool: { ...(prod.pool as object), ...pool },
      monitoring: { ...(prod.monitoring as object), ...monitoring },
    });
    const problems = (raw: Record<string, unknown>): string[] => {
      try {
        parseSettings(raw);
      } catch (e) {
        if (e instanceof ConfigError) return e.issues.map((i) => `${i.key}: ${i.message}`);
        throw e;
      }
      return [];
    };
    const FIELD = `${KEY}.exhaustionServerConnections`;

    it("GIVEN prod and staging THEN both stacks pass and derive 48 of 50 and 19 of 20", () => {
      const t = (s: string) => {
        const st = loadStackSettings(s);
        return deriveThresholds(st.pool, st.monitoring.exhaustionServerConnections)
          .exhaustionServerConnections;
      };
      assert.equal(t("prod"), 48);
      assert.equal(t("staging"), 19);
    });
    it("GIVEN an explicit threshold below the cap THEN it is accepted and reaches the settings", () => {
      const s = parseSettings(stack({}, { exhaustionServerConnections: 45 }));
      assert.equal(s.monitoring.exhaustionServerConnections, 45);
    });
    it("GIVEN an explicit threshold equal to the cap THEN it is refused naming key, value and range", () => {
      assert.deepEqual(problems(stack({}, { exhaustionServerConnections: 50 })), [
        `${FIELD}: is 50; must be an integer from 1 to 49, below clipper-pgbouncer:pool.maxDbConnections (50), ` +
          `or PgBouncerPoolExhaustion fires only once the pool is full`,
      ]);
    });
    it("GIVEN an explicit threshold that is not a positive integer THEN it is refused", () => {
      assert.deepEqual(problems(stack({}, { exhaustionServerConnections: 0 })), [
        `${FIELD}: is 0; must be an integer from 1 to 10000`,
      ]);
      assert.deepEqual(problems(stack({}, { exhaustionServerConnections: "48" })), [
        `${FIELD}: is "48"; must be an integer from 1 to 10000`,
      ]);
    });
    it("GIVEN a cap of 1 without a threshold THEN the stack is refused, saying what to set", () => {
      const pool = { defaultPoolSize: 1, minPoolSize: 0, maxDbConnections: 1 };
      assert.deepEqual(problems(stack(pool, {})), [
        `${FIELD}: is not set, and clipper-pgbouncer:pool.maxDbConnections is 1: no busy count below the cap ` +
          `is left to alert at; set it to 1 (PgBouncerPoolExhaustion then fires when the one connection is busy)`,
      ]);
      assert.deepEqual(problems(stack(pool, { exhaustionServerConnections: 1 })), []);
      assert.deepEqual(problems(stack(pool, { exhaustionServerConnections: 2 })).length, 1);
    });
  });

  it("keeps the fixed ratios of the spec", () => {
    const t = deriveThresholds(POOL_DEFAULTS);
    assert.equal(t.averageWaitSeconds, 0.05);
    assert.equal(t.waitingClients, 10);
    assert.equal(t.errorsPerSecond, 1);
    assert.equal(t.utilizationRatio, ALERT_POLICY.utilizationPercent / 100);
  });
});
