import * as assert from "node:assert/strict";
import { supportsParameter } from "../components/pgbouncer/versions";
import type { StackSettings } from "../stacks/settings";
import { localPgBouncerVersion } from "../tools/harness";
import { criteriaFor } from "../tools/load/criteria";
import { type LocalTarget, startLocalTarget } from "../tools/load/local";
import { variantSettings } from "../tools/load/benchmark";
import { probeCancels } from "../tools/load/cancel";
import { formatFault, runFault } from "../tools/load/fault";
import { runPgbench } from "../tools/load/pgbench";
import { PgClient, PgError } from "../tools/load/pgwire";
import { loadStackSettings } from "../tools/load/stack-settings";
import { type ValidationReport, runValidation } from "../tools/load/validate";

/**
 * The load validation in seconds: a short pgbench through the rendered prod pooler, judged by the spec's
 * criteria, and the same criteria failing against a pool too small for the load.
 */
describe("load smoke: pgbench through the rendered prod pooler, judged by the spec's criteria", function () {
  this.timeout(90_000);
  const prod = loadStackSettings("prod");
  const quiet = () => undefined;
  let local: LocalTarget;

  before(async () => {
    local = await startLocalTarget(prod, { workload: "tpcb", scale: 1, log: quiet });
  });
  after(async () => {
    await local?.stack.stop();
  });

  const validate = (settings: StackSettings, target: LocalTarget["target"], clients: number) =>
    runValidation({
      settings,
      target,
      clients,
      durationSeconds: 3,
      warmupSeconds: 1,
      workload: "tpcb",
      ratePerClient: 0,
      sampleIntervalMs: 200,
      settleSeconds: 5,
    });

  it("the minimal wire client logs in with SCRAM through PgBouncer and is refused a wrong password", async () => {
    const c = await PgClient.connect(local.stack.pooled);
    try {
      const r = await c.query("SELECT current_user, inet_server_port()");
      assert.deepEqual(r.rows, [[local.stack.pooled.user, String(local.stack.postgres.port)]]);
    } finally {
      c.close();
    }
    await assert.rejects(PgClient.connect({ ...local.stack.pooled, password: "wrong" }), PgError);
  });

  describe("GIVEN fewer clients than the server cap, flat out", () => {
    let report: ValidationReport;
    const clients = 20;
    before(async () => {
      assert.ok(clients < criteriaFor(prod.pool).activeBelow, "the smoke load must fit the prod pool");
      report = await validate(prod, local.target, clients);
    });

    it("THEN every criterion passes", () => {
      assert.deepEqual(
        report.verdict.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
        [],
      );
      assert.equal(report.verdict.pass, true);
    });

    it("THEN pgbench exited 0 and PgBouncer counted the transactions pgbench reported", () => {
      assert.equal(report.pgbench.exitCode, 0);
      assert.ok(report.pgbench.transactions > 0);
      // SHOW STATS also counts pgbench's own setup statements: at least pgbench's transactions
      assert.ok(report.pooledTransactions >= report.pgbench.transactions);
    });

    it("THEN the server connections in use never exceeded the client count", () => {
      assert.ok(report.verdict.peakActivePerProcess > 0);
      assert.ok(report.verdict.peakActivePerProcess <= clients);
    });
  });

  describe("GIVEN a pool too small for the load (a 4-connection cap, 20 clients flat out)", () => {
    let report: ValidationReport;
    let small: LocalTarget | undefined;
    const cap = 4;
    before(async () => {
      const settings: StackSettings = {
        ...prod,
        pool: { ...prod.pool, maxDbConnections: cap, defaultPoolSize: cap, minPoolSize: 1 },
      };
      small = await startLocalTarget(settings, {
        workload: "tpcb",
        postgres: local.stack.postgres,
        log: quiet,
      });
      report = await validate(settings, small.target, 20);
    });
    after(async () => {
      await small?.stack.stop();
    });

    it("THEN the run fails on busy server connections and on waiting clients, and only on those", () => {
      assert.equal(report.verdict.pass, false);
      const failed = report.verdict.checks.filter((c) => !c.ok).map((c) => c.name);
      assert.deepEqual(failed, [
        `busy server connections per process < ${criteriaFor({ ...prod.pool, maxDbConnections: cap }).activeBelow} (96% of max_db_connections ${cap})`,
        `waiting clients < ${criteriaFor(prod.pool).waitingBelow}`,
      ]);
      assert.equal(report.verdict.peakActivePerProcess, cap);
    });
  });

  it("GIVEN pgbench -M prepared THEN it works only where the local PgBouncer has max_prepared_statements", async () => {
    const supported = supportsParameter(await localPgBouncerVersion(), "max_prepared_statements");
    const r = await runPgbench({
      conn: local.stack.pooled,
      clients: 4,
      durationSeconds: 2,
      workload: "select-only",
      protocol: "prepared",
    });
    if (supported) {
      assert.equal(r.ok, true, r.stderr);
    } else {
      // 1.18: clients abort on "prepared statement does not exist" while pgbench counts 0 failed
      assert.equal(r.failed, 0);
      assert.ok(r.abortedClients > 0, r.stderr);
      assert.equal(r.exitCode, 2);
      assert.equal(r.ok, false);
    }
  });

  it("GIVEN clients that cannot log in THEN the run fails on connection errors and on pgbench's exit code", async () => {
    const target = { ...local.target, pooled: { ...local.target.pooled, password: "wrong" } };
    const report = await runValidation({
      settings: prod,
      target,
      clients: 2,
      durationSeconds: 1,
      warmupSeconds: 0,
      workload: "tpcb",
      ratePerClient: 0,
      settleSeconds: 1,
    });
    const failed = report.verdict.checks.filter((c) => !c.ok).map((c) => c.name);
    assert.ok(failed.includes("zero connection errors"), failed.join("; "));
    assert.ok(failed.includes("pgbench exit code 0, no failed transactions"), failed.join("; "));
    assert.notEqual(report.pgbench.exitCode, 0);
  });

  it("GIVEN a PgBouncer restart with SIGINT under load THEN no transaction in flight fails and new ones succeed", async () => {
    const r = await runFault(local.stack, "pgbouncer-sigint", {
      workers: 8,
      seconds: 3,
      atSeconds: 1,
      accounts: 100_000,
    });
    assert.equal(r.analysis.failedInFlight, 0, formatFault(r));
    assert.equal(r.analysis.failedAfterRecovery, 0, formatFault(r));
    assert.ok(r.analysis.transactions > 0);
    assert.notEqual(r.analysis.recoveredMs, undefined, formatFault(r));
  });

  describe("GIVEN two PgBouncer processes on one port (so_reuseport; 1.18 has no peering)", () => {
    let two: LocalTarget | undefined;
    before(async () => {
      const settings = variantSettings(prod, { cap: 10, processes: 2 });
      two = await startLocalTarget(settings, {
        workload: "sleep",
        postgres: local.stack.postgres,
        log: quiet,
      });
    });
    after(async () => {
      await two?.stack.stop();
    });

    it("THEN clients reach both processes, and a cancel request reaching the other process is lost", async () => {
      assert.ok(two);
      assert.equal(two.stack.pgbouncer.pids().length, 2);
      const probe = await probeCancels(two.stack, 16, 2);
      assert.equal(probe.spread.length, 2);
      assert.equal(probe.spread[0] + probe.spread[1], 16);
      assert.ok(
        probe.spread.every((n) => n > 0),
        `spread ${probe.spread.join("/")}`,
      );
      assert.deepEqual(probe.other, []);
      // each cancel lands on a random process: all 16 reaching the owner by chance has odds of 2^-16
      assert.ok(probe.lost > 0, JSON.stringify(probe));
      assert.equal(probe.cancelled + probe.lost, 16);
    });

    it("AND with one process every cancel request arrives", async () => {
      const probe = await probeCancels(local.stack, 16, 2);
      assert.deepEqual({ cancelled: probe.cancelled, lost: probe.lost }, { cancelled: 16, lost: 0 });
    });
  });
});
