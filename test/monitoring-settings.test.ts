import { strict as assert } from "assert";
import { ConfigError, ConfigReader, IssueList } from "../components/common/config-reader";
import {
  MONITORING_DEFAULTS,
  type MonitoringSettings,
  readMonitoring,
} from "../components/monitoring/settings";
import { ALERT_POLICY, deriveThresholds } from "../components/monitoring/thresholds";
import { POOL_DEFAULTS } from "../components/pgbouncer/settings";

const KEY = "clipper-pgbouncer:monitoring";
const RUNBOOK = "https://runbooks.example/pgbouncer";

function read(raw: unknown): MonitoringSettings {
  const issues = new IssueList();
  const m = readMonitoring(new ConfigReader(KEY, raw, issues));
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
  it("GIVEN other caps THEN the thresholds move with them (rounding exhaustion up, never below 1)", () => {
    const at = (maxDbConnections: number, maxClientConn = 100) =>
      deriveThresholds({ maxDbConnections, maxClientConn });
    assert.equal(at(5).exhaustionServerConnections, 5); // 4.8 rounds up: the whole pool busy
    assert.equal(at(25).exhaustionServerConnections, 24);
    assert.equal(at(100).exhaustionServerConnections, 96);
    assert.equal(at(1).exhaustionServerConnections, 1);
    assert.equal(at(10).utilizationServerConnections, 8);
    assert.equal(at(10, 250).utilizationClientConnections, 200);
    assert.equal(at(10).serverCap, 10);
  });
  it("keeps the fixed ratios of the spec", () => {
    const t = deriveThresholds(POOL_DEFAULTS);
    assert.equal(t.averageWaitSeconds, 0.05);
    assert.equal(t.waitingClients, 10);
    assert.equal(t.errorsPerSecond, 1);
    assert.equal(t.utilizationRatio, ALERT_POLICY.utilizationPercent / 100);
  });
});
