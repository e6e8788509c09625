/**
 * The monitoring, end to end against the real thing: the local harness's PostgreSQL + PgBouncer (from the
 * stack's rendered ini, with a small server cap), the real pgbouncer_exporter 0.12.1, and a real Prometheus
 * loading the rendered scrape job and rules. An overload through the pooler must fire
 * PgBouncerPoolExhaustion and PgBouncerWaitingClients, every dashboard query and every metric an alert
 * rule reads must return data, and
 * PgBouncerDown must fire once PgBouncer stops. Not part of the test run; see run.sh.
 *
 *   ts-node tools/monitoring/main.ts --exporter PATH [--stack staging] [--server-cap 5]
 *     [--scrape 5] [--for 15] [--clients 80] [--load-seconds 90]
 *
 * The scrape interval, evaluation interval, rate window and `for` durations are shortened for this run
 * only; the thresholds still derive from the (small) pool, as in a stack.
 */
import { socketConnectionString } from "../../components/pgbouncer";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { IssueList, readSection } from "../../components/common";
import {
  panelSpecs,
  metricNamesIn,
  queryContext,
  type AlertName,
  alertRuleGroup,
  renderRulesFile,
  staticScrapeJob,
  type MonitoringSettings,
  MONITORING,
  deriveThresholds,
} from "../../components/monitoring";
import { type PooledStack, exitOnSignals, freePort, sleep, startPooledStack } from "../harness";
import { exited, makeRunDir, requireBinary, spawnAsUser, writeOwned } from "../harness/proc";
import { runPgbench } from "../load/pgbench";
import { parseSettings } from "../../stacks/settings";
import { key, listStacks, rawStackConfig, stackFileConfig } from "../../stacks/stack-file";
import { Args, runMain } from "../common";

const USAGE =
  "usage: ts-node tools/monitoring/main.ts --exporter PATH [--stack staging] [--server-cap 5] [--scrape 5] " +
  "[--for 15] [--clients 80] [--load-seconds 90]";

const log = (m: string) => process.stderr.write(`monitoring: ${m}\n`);

async function prom<T>(base: string, p: string): Promise<T> {
  const r = await fetch(`${base}${p}`);
  const body = (await r.json()) as { status: string; data: T; error?: string };
  if (body.status !== "success") throw new Error(`${p}: ${body.error ?? r.status}`);
  return body.data;
}

interface PromAlert {
  labels: Record<string, string>;
  state: "pending" | "firing";
}

async function waitFor<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs / 1000}s waiting for ${what}`);
    await sleep(500);
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const args = new Args(argv);
  const exporterBin = path.resolve(args.string("exporter"));
  const stackName = args.oneOf("stack", "staging", listStacks());
  const cap = args.int("server-cap", 5, 1, 1000);
  const scrape = args.int("scrape", 5, 1, 300);
  const forSeconds = args.int("for", 15, 0, 3600);
  const clients = args.int("clients", 80, 1, 10000);
  const loadSeconds = args.int("load-seconds", 90, 1, 3600);
  args.done();
  exitOnSignals();
  const prometheusBin = requireBinary("/usr/bin/prometheus", "prometheus");

  // The stack's settings with a small per-process server cap, so that the overload exhausts it quickly.
  const raw = rawStackConfig(stackFileConfig(stackName));
  // the stack's monitoring is read below with shortened intervals; parseSettings only needs its runbook URL
  const base = parseSettings({
    ...Object.fromEntries(Object.entries(raw).filter(([k]) => k !== "monitoring")),
    monitoring: { runbookBaseUrl: "https://runbooks.invalid/pgbouncer" },
  });
  const settings = {
    ...base,
    pool: {
      ...base.pool,
      maxDbConnections: cap,
      defaultPoolSize: cap,
      minPoolSize: 0,
      reservePoolSize: 0,
      maxClientConn: Math.max(base.pool.maxClientConn, clients * 2),
    },
  };
  const issues = new IssueList();
  const stackMonitoring = readSection(
    MONITORING,
    key("monitoring"),
    raw.monitoring ?? { runbookBaseUrl: "https://runbooks.invalid/pgbouncer" },
    issues,
  );
  issues.throwIfAny();
  const mon: MonitoringSettings = {
    ...stackMonitoring,
    scrapeIntervalSeconds: scrape,
    evaluationIntervalSeconds: scrape,
    rateWindowSeconds: 4 * scrape,
    for: {
      poolExhaustion: forSeconds,
      highWaitTime: forSeconds,
      waitingClients: forSeconds,
      down: forSeconds,
      highErrors: forSeconds,
      highUtilization: forSeconds,
    },
  };
  const t = deriveThresholds(settings.pool, settings.monitoring.exhaustionServerConnections);
  log(
    `pool: server cap ${cap} -> exhaustion at ${t.exhaustionServerConnections}, waiting > ${t.waitingClients}; ` +
      `scrape/eval ${scrape}s, for ${forSeconds}s, ${clients} clients for ${loadSeconds}s`,
  );

  const dir = makeRunDir("monitoring-check");
  let stack: PooledStack | undefined;
  const children: ReturnType<typeof spawnAsUser>[] = [];
  const figures: Record<string, string> = {};
  try {
    stack = await startPooledStack(settings);
    const s = stack;
    log(`PgBouncer ${s.version} on ${s.pgbouncer.host}:${s.pgbouncer.port}, PostgreSQL ${s.postgres.port}`);

    const exporterPort = await freePort();
    const c = s.console;
    // As in the pod: through the process's unix socket, which PgBouncer never asks for TLS.
    const dsn = socketConnectionString(
      `postgres://${c.user}:${c.password}@${c.host}:${c.port}/pgbouncer?sslmode=disable`,
      s.pgbouncer.files[0].unixSocketDir,
    );
    // the connection string goes through the environment (the child inherits it), not the process list
    process.env.PGBOUNCER_EXPORTER_CONNECTION_STRING = dsn;
    children.push(
      spawnAsUser(
        exporterBin,
        [`--web.listen-address=127.0.0.1:${exporterPort}`, "--web.telemetry-path=/metrics"],
        path.join(dir, "exporter.log"),
      ),
    );

    const promPort = await freePort();
    const rulesFile = path.join(dir, "rules.yml");
    writeOwned(rulesFile, renderRulesFile(alertRuleGroup(settings.pool, mon)), 0o644);
    const config = {
      global: { scrape_interval: `${scrape}s`, evaluation_interval: `${mon.evaluationIntervalSeconds}s` },
      rule_files: [rulesFile],
      scrape_configs: [staticScrapeJob(mon, [`127.0.0.1:${exporterPort}`])],
    };
    const configFile = path.join(dir, "prometheus.yml");
    writeOwned(configFile, yaml.dump(config), 0o644);
    const tsdb = path.join(dir, "tsdb");
    fs.mkdirSync(tsdb);
    fs.chownSync(tsdb, fs.statSync(dir).uid, fs.statSync(dir).gid);
    children.push(
      spawnAsUser(
        prometheusBin,
        [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${tsdb}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
          "--storage.tsdb.retention.time=1h",
        ],
        path.join(dir, "prometheus.log"),
      ),
    );
    const promBase = `http://127.0.0.1:${promPort}`;
    await waitFor("the exporter target to be up in Prometheus", 60_000, async () => {
      const r = await prom<{ result: unknown[] }>(
        promBase,
        `/api/v1/query?query=${encodeURIComponent(`pgbouncer_up{job="${mon.jobName}"} == 1`)}`,
      );
      return r.result.length > 0 ? true : undefined;
    });
    log("Prometheus scrapes the exporter; pgbouncer_up is 1");
    const metricCount = await prom<string[]>(
      promBase,
      `/api/v1/label/__name__/values?match[]=${encodeURIComponent(`{job="${mon.jobName}"}`)}`,
    );
    figures["series names scraped"] = String(metricCount.length);

    const firing = async (): Promise<Set<string>> => {
      const a = await prom<{ alerts: PromAlert[] }>(promBase, "/api/v1/alerts");
      return new Set(a.alerts.filter((x) => x.state === "firing").map((x) => x.labels.alertname));
    };
    // a healthy, idle pool for longer than every `for`: nothing may even be pending
    await sleep((forSeconds + 3 * scrape) * 1000);
    const before = await prom<{ alerts: PromAlert[] }>(promBase, "/api/v1/alerts");
    figures["alerts pending or firing on the idle pool"] =
      before.alerts.map((a) => `${a.labels.alertname} (${a.state})`).join(", ") || "none";
    if (before.alerts.length > 0)
      throw new Error(`alerts on a healthy pool: ${figures["alerts pending or firing on the idle pool"]}`);

    const loadStart = Date.now();
    const load = runPgbench({
      conn: s.pooled,
      clients,
      threads: 2,
      durationSeconds: loadSeconds,
      workload: "sleep",
    });
    const firedAt: Partial<Record<AlertName, number>> = {};
    // the two the overload must raise, and the two it raises as well (all clients wait on 5 servers)
    const want: AlertName[] = [
      "PgBouncerPoolExhaustion",
      "PgBouncerWaitingClients",
      "PgBouncerHighUtilization",
      "PgBouncerHighWaitTime",
    ];
    await waitFor(
      "PgBouncerPoolExhaustion and PgBouncerWaitingClients to fire",
      (loadSeconds - 5) * 1000,
      async () => {
        const now = await firing();
        for (const a of now) {
          if (firedAt[a as AlertName] === undefined) {
            firedAt[a as AlertName] = (Date.now() - loadStart) / 1000;
            log(`${a} firing ${firedAt[a as AlertName]?.toFixed(1)}s after the load started`);
          }
        }
        return want.every((a) => firedAt[a] !== undefined) ? true : undefined;
      },
    );

    // every dashboard query, while the load runs
    const empty: string[] = [];
    let queriesChecked = 0;
    for (const p of panelSpecs(queryContext(settings.pool, mon))) {
      for (const q of p.queries) {
        queriesChecked++;
        const r = await prom<{ result: { value: [number, string] }[] }>(
          promBase,
          `/api/v1/query?query=${encodeURIComponent(q.expr)}`,
        );
        const values = r.result.map((x) => x.value[1]);
        log(
          `panel "${p.title}" / ${q.legend}: ${values.length} series, values ${values.slice(0, 3).join(", ")}`,
        );
        if (r.result.length === 0) empty.push(`${p.title}: ${q.expr}`);
      }
    }
    figures["dashboard queries with data"] = `${queriesChecked - empty.length} of ${queriesChecked}`;

    // every metric an alert rule reads, while the load runs: a renamed or dropped SHOW column shows here
    const ruleMetrics = [
      ...new Set(alertRuleGroup(settings.pool, mon).rules.flatMap((r) => metricNamesIn(r.expr))),
    ].sort();
    const missing: string[] = [];
    for (const m of ruleMetrics) {
      const r = await prom<{ result: unknown[] }>(
        promBase,
        `/api/v1/query?query=${encodeURIComponent(`${m}{job="${mon.jobName}"}`)}`,
      );
      log(`alert metric ${m}: ${r.result.length} series`);
      if (r.result.length === 0) missing.push(m);
    }
    figures["alert metrics with data"] =
      `${ruleMetrics.length - missing.length} of ${ruleMetrics.length} (${ruleMetrics.join(", ")})`;
    const version = await prom<{ result: { metric: Record<string, string> }[] }>(
      promBase,
      `/api/v1/query?query=${encodeURIComponent(`pgbouncer_version_info{job="${mon.jobName}"}`)}`,
    );
    figures["pgbouncer_version_info version"] = version.result.map((x) => x.metric.version).join(", ");

    const bench = await load;
    figures["pgbench"] =
      `exit ${bench.exitCode}, ${bench.tps.toFixed(0)} tps, latency ${bench.latencyAvgMs.toFixed(1)} ms`;
    for (const [a, sec] of Object.entries(firedAt)) figures[`${a} fired after (s)`] = sec.toFixed(1);

    const stopStart = Date.now();
    await s.pgbouncer.stop();
    log("PgBouncer stopped");
    const downAfter = await waitFor("PgBouncerDown to fire", 120_000, async () =>
      (await firing()).has("PgBouncerDown") ? (Date.now() - stopStart) / 1000 : undefined,
    );
    figures["PgBouncerDown fired after PgBouncer stopped (s)"] = downAfter.toFixed(1);

    process.stdout.write(
      Object.entries(figures)
        .map(([k, v]) => `${k}: ${v}`)
        .join("\n") + "\n",
    );
    if (empty.length > 0) {
      throw new Error(`dashboard queries without data:\n  ${empty.join("\n  ")}`);
    }
    if (missing.length > 0) throw new Error(`alert metrics without data: ${missing.join(", ")}`);
    log("PASS");
    return 0;
  } finally {
    for (const ch of children) ch.kill("SIGTERM");
    await Promise.all(children.map((ch) => Promise.race([exited(ch), sleep(10_000)])));
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill("SIGKILL");
    if (stack) await stack.stop();
    if (process.env.KEEP_E2E_DIR) log(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

runMain(USAGE, () => main(process.argv.slice(2)));
