import * as assert from "node:assert/strict";
import type { StackSettings } from "../../../stacks/settings";
import { criteriaFor } from "../../load/criteria";
import { type LocalTarget, startLocalTarget } from "../../load/local";
import { PgClient, PgError } from "../../harness/pgwire";
import { type ValidationReport, runValidation } from "../../load/validate";
import { loadStackSettings } from "../../../stacks/settings";

/**
 * The load validation in seconds: a short pgbench through the rendered prod pooler, judged by the spec's
 * criteria, and the same criteria failing against a pool too small for the load. A replica replaced under load
 * is load-smoke-fault.test.ts (a file of its own, so that mocha's workers run the two at once).
 */
describe("load smoke: pgbench through the rendered prod pooler, judged by the spec's criteria", function () {
  this.timeout(90_000);
  const prod = loadStackSettings("prod");
  let local: LocalTarget;

  before(async () => {
    local = await startLocalTarget(prod, { workload: "tpcb", scale: 1 });
  });
  after(async () => {
    await local?.stack.stop();
  });

  /** A login as PgBouncer makes one to PostgreSQL: TLS, then SCRAM, then closed. */
  const serverLogin = (of: LocalTarget) => async () => {
    const c = await PgClient.connect({ ...of.stack.direct, tls: { sslmode: "require" } });
    c.close();
  };

  // No warm-up: the pod is cold, as a new pod is when the Service sends it its first clients (nothing logs in
  // before; min_pool_size does not pre-warm a pool without clients). The cold start is judged by what a cold
  // pool does, one server login at a time (criteria.ts, coldStartBoundMs and loginPaceMs), the rest by the warm
  // criteria.
  const validate = (settings: StackSettings, of: LocalTarget, clients: number) =>
    runValidation({
      settings,
      target: of.target,
      clients,
      // long enough for a cold pool to grow on busy cores: 20 server logins of up to 95 ms each (the cold-start
      // bound, 1.9 s) after the clients' own logins left 2 s runs short of a grown pool (2026-12-07); the small
      // pool's waiting clients, once its 4 servers had grown, did not show in 2 s either
      durationSeconds: 3,
      warmupSeconds: 0,
      coldStart: { serverLogin: serverLogin(of) },
      workload: "tpcb",
      ratePerClient: 0,
      sampleIntervalMs: 100,
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
      report = await validate(prod, local, clients);
    });

    it("THEN every criterion passes, the cold start's included", () => {
      console.log(`      ${report.verdict.checks.find((c) => c.name.startsWith("cold start"))?.detail}`);
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
      });
      report = await validate(settings, small, 20);
    });
    after(async () => {
      await small?.stack.stop();
    });

    it("THEN the run fails on busy server connections and on waiting clients, and only on those", () => {
      assert.equal(report.verdict.pass, false);
      const failed = report.verdict.checks.filter((c) => !c.ok).map((c) => c.name);
      assert.deepEqual(failed, [
        `busy server connections per process < ${criteriaFor({ ...prod.pool, maxDbConnections: cap }).activeBelow} (96% of max_db_connections ${cap})`,
        `waiting clients < ${criteriaFor(prod.pool).waitingBelow} once the pool has grown`,
      ]);
      assert.equal(report.verdict.peakActivePerProcess, cap);
    });
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
});
