import * as assert from "node:assert/strict";
import { deriveThresholds } from "../../../components/monitoring";
import {
  type Criteria,
  type RunObservations,
  atBaseline,
  coldStartBoundMs,
  loginPaceMs,
  criteriaFor,
  evaluate,
} from "../../load/criteria";
import { parsePgbench } from "../../load/pgbench";
import type { PoolSample, ProcessSample } from "../../load/sampler";
import { loadStackSettings } from "../../../stacks/settings";

const idle: ProcessSample = {
  clActive: 0,
  clWaiting: 0,
  svActive: 0,
  svIdle: 0,
  svUsed: 0,
  svLogin: 0,
  maxWaitMs: 0,
  xactCount: 0,
  queryCount: 0,
  waitTimeUs: 0,
};

function sample(...processes: Partial<ProcessSample>[]): PoolSample {
  const ps = processes.map((p) => ({ ...idle, ...p }));
  const total = ps.reduce(
    (a, p) => ({
      ...a,
      clActive: a.clActive + p.clActive,
      clWaiting: a.clWaiting + p.clWaiting,
      svActive: a.svActive + p.svActive,
    }),
    { ...idle },
  );
  return { t: 0, processes: ps, total };
}

/** pgbench's summary of a clean run, in its own format. */
const CLEAN = parsePgbench(
  0,
  "number of transactions actually processed: 1000\nnumber of failed transactions: 0 (0.000%)\n" +
    "latency average = 2.000 ms\ntps = 500.0 (without initial connection time)\n",
  "",
);

describe("load criteria (tools/load/criteria)", () => {
  const prod = loadStackSettings("prod");
  const c: Criteria = criteriaFor(prod.pool);
  const busy = c.activeBelow - 1;
  const good: RunObservations = {
    baseline: sample({}),
    samples: [sample({ clActive: 100, svActive: busy, clWaiting: c.waitingBelow - 1 })],
    after: sample({ svIdle: 10 }),
    settled: true,
    settleMs: 100,
    pgbench: CLEAN,
    samplingErrors: [],
  };
  const failedChecks = (o: Partial<RunObservations>) =>
    evaluate(c, { ...good, ...o })
      .checks.filter((k) => !k.ok)
      .map((k) => k.name);

  it("derives the prod limits from the pool settings: the spec's 48 of 50 and 10 waiting clients", () => {
    assert.equal(prod.pool.maxDbConnections, 50);
    assert.deepEqual(c, { serverCap: 50, activeBelow: 48, waitingBelow: 10 });
    const staging = loadStackSettings("staging");
    assert.equal(
      criteriaFor(staging.pool).activeBelow,
      deriveThresholds(staging.pool).exhaustionServerConnections,
    );
  });

  describe("a cold start (20 clients at a cold pool of one process, pool size 20, a server login of 10 ms)", () => {
    const cold = { clients: 20, processes: 1, poolSize: 20, serverLoginMs: 10 };
    /**
     * A sample at `t` ms of one process with `servers` idle servers, `waiting` clients waiting `wait` ms, and
     * `active` clients logged in and not waiting.
     */
    const at = (t: number, servers: number, waiting: number, wait: number, active = 0): PoolSample => {
      const p = { ...idle, svIdle: servers, clWaiting: waiting, maxWaitMs: wait, clActive: active };
      return { t, processes: [p], total: p };
    };
    const grows = [at(0, 0, 19, 5), at(100, 8, 12, 90), at(200, 20, 0, 0), at(300, 20, 0, 0)];
    const coldChecks = (samples: PoolSample[]) =>
      evaluate(c, { ...good, samples, coldStart: cold })
        .checks.filter((k) => !k.ok)
        .map((k) => k.name);

    it("bounds a client's wait by the process's server logins in series: 20 x 10 ms", () => {
      assert.deepEqual(coldStartBoundMs(cold), { logins: 20, boundMs: 200 });
      assert.deepEqual(coldStartBoundMs({ ...cold, processes: 2 }), { logins: 10, boundMs: 100 });
      assert.deepEqual(coldStartBoundMs({ ...cold, clients: 50 }), { logins: 20, boundMs: 200 });
    });

    it("passes clients that wait while the pool grows, and judges the waiting limit only after", () => {
      assert.deepEqual(coldChecks(grows), []);
      // the same samples judged warm fail on the burst's waiting clients
      assert.deepEqual(failedChecks({ samples: grows }), [`waiting clients < ${c.waitingBelow}`]);
    });

    it("asks of a burst bigger than the pool only that the pool grows to its size (the rest wait for transactions)", () => {
      const big = { ...cold, clients: 50 };
      const names = (samples: PoolSample[]) =>
        evaluate(c, { ...good, samples, coldStart: big }).checks.map((k) => `${k.ok}: ${k.name}`);
      const waited = [at(0, 0, 49, 5), at(100, 8, 42, 900), at(200, 20, 30, 950), at(300, 20, 5, 3)];
      assert.ok(
        names(waited).includes(
          "true: cold start: the pool grows to 20 servers (its size; the burst's other clients wait for transactions)",
        ),
      );
      assert.ok(names(waited.slice(0, 2)).some((n) => n.startsWith("false: cold start")));
    });

    it("passes a pool that stops short of the burst with no client waiting (never all in a transaction at once)", () => {
      const short = [at(0, 0, 19, 5, 1), at(100, 8, 12, 90, 8), at(200, 19, 0, 0, 20), at(300, 19, 0, 0, 20)];
      assert.deepEqual(coldChecks(short), []);
      // and judges the waiting limit after that point
      assert.deepEqual(coldChecks([...short, at(400, 19, 10, 3, 10)]), [
        `waiting clients < ${c.waitingBelow} once the pool has grown`,
      ]);
      // not before the burst has arrived: one client logged in and served is no grown pool
      assert.deepEqual(coldChecks([at(0, 1, 0, 0, 1), ...short.slice(1, 2), at(300, 8, 12, 250, 8)]), [
        "cold start: the pool grows until no client waits, and no client waits longer than 20 server logins in series (20 x 10 ms = 200 ms)",
      ]);
    });

    it("judges as the cold start a pause of the waiting between two server logins (the pool still grows)", () => {
      // on busy cores: all 20 logged in, 5 servers and nobody waiting at one sample, then waits while it grows on
      const paused = [at(0, 0, 19, 5), at(100, 5, 0, 0, 20), at(200, 9, 11, 150, 9), at(300, 20, 0, 0, 20)];
      assert.deepEqual(coldChecks(paused), []);
      // past the most servers the pool holds, the same waits are judged warm
      assert.deepEqual(coldChecks([...paused, at(400, 20, 11, 150, 9)]), [
        `waiting clients < ${c.waitingBelow} once the pool has grown`,
      ]);
      // and a wait in the pause longer than every login in series still fails the cold start (PgBouncer's
      // pace there: 200 ms for 15 logins, 20 of which make 267 ms)
      assert.equal(
        coldChecks([...paused.slice(0, 2), at(200, 9, 11, 280, 9), paused[3]]).filter((n) =>
          n.startsWith("cold start"),
        ).length,
        1,
      );
    });

    it("bounds the logins by PgBouncer's own pace when the samples show it slower than the login timed from here", () => {
      // 8 servers at 100 ms, 20 at 500 ms: 12 logins in 400 ms, 33 ms each, against the 10 ms timed from here
      const slow = [at(0, 0, 19, 5), at(100, 8, 12, 90), at(300, 14, 6, 500), at(500, 20, 0, 0, 20)];
      assert.equal(loginPaceMs(1, slow, 3)?.toFixed(1), "33.3");
      assert.equal(loginPaceMs(2, slow, 3)?.toFixed(1), "66.7"); // two processes log in side by side
      assert.deepEqual(coldChecks(slow), []);
      const checks = evaluate(c, { ...good, samples: slow, coldStart: cold }).checks;
      const check = checks.find((k) => k.name.startsWith("cold start"));
      assert.match(check?.name ?? "", /20 server logins in series \(20 x 33 ms = 667 ms\)$/);
      assert.match(check?.detail ?? "", /a login 10 ms timed from here, PgBouncer's pace 33 ms$/);
      // longer than 20 logins at that pace still fails
      assert.equal(coldChecks([...slow.slice(0, 2), at(300, 14, 6, 700), slow[3]]).length, 1);
      // unsampled (grown by the first sample, or never): the login timed from here alone
      assert.equal(loginPaceMs(1, [at(0, 20, 0, 0, 20)], 0), undefined);
      assert.equal(loginPaceMs(1, slow, -1), undefined);
    });

    it("fails a client that waited longer than every login in series, and a pool that never grows", () => {
      const name = (n: string[]) => n.filter((x) => x.startsWith("cold start"));
      assert.equal(name(coldChecks([at(0, 0, 19, 5), at(100, 8, 12, 250), at(200, 20, 0, 0)])).length, 1);
      assert.equal(name(coldChecks([at(0, 0, 19, 5), at(100, 8, 12, 90)])).length, 1);
      assert.deepEqual(coldChecks([...grows, at(400, 20, 10, 3)]), [
        `waiting clients < ${c.waitingBelow} once the pool has grown`,
      ]);
    });
  });

  it("passes a run just below every limit", () => {
    assert.deepEqual(failedChecks({}), []);
    assert.equal(evaluate(c, good).pass, true);
  });

  it("fails at the exhaustion level of one process, even when the sum over processes is spread", () => {
    assert.deepEqual(failedChecks({ samples: [sample({ svActive: c.activeBelow })] }), [
      `busy server connections per process < ${c.activeBelow} (96% of max_db_connections ${c.serverCap})`,
    ]);
    assert.deepEqual(failedChecks({ samples: [sample({ svActive: busy }, { svActive: busy })] }), []);
  });

  it("fails at the waiting limit, summed over processes", () => {
    const half = Math.ceil(c.waitingBelow / 2);
    assert.deepEqual(failedChecks({ samples: [sample({ clWaiting: half }, { clWaiting: half })] }), [
      `waiting clients < ${c.waitingBelow}`,
    ]);
  });

  it("fails when the pool did not return to its baseline", () => {
    assert.deepEqual(failedChecks({ settled: false, after: sample({ svActive: 3 }) }), [
      "pool back to baseline after the load",
    ]);
    assert.equal(atBaseline(idle, { ...idle, svActive: 1 }), false);
    assert.equal(atBaseline(idle, { ...idle, clWaiting: 1 }), false);
    assert.equal(atBaseline(idle, { ...idle, clActive: 1 }), false);
    assert.equal(atBaseline(idle, { ...idle, svIdle: 40 }), true);
  });

  it("fails on sampling errors and on a run without samples", () => {
    assert.deepEqual(failedChecks({ samplingErrors: ["server closed the connection unexpectedly"] }), [
      "zero connection errors",
    ]);
    assert.deepEqual(failedChecks({ samples: [] }), ["samples taken during the load"]);
  });

  it("fails on pgbench's exit code even when it reports 0 failed transactions", () => {
    const aborted = parsePgbench(
      2,
      CLEAN.stdout,
      'pgbench: error: client 3 script 0 aborted in command 1 query 0: ERROR:  prepared statement "P_0" does not exist\n' +
        "pgbench: error: Run was aborted; the above results are incomplete.\n",
    );
    assert.equal(aborted.failed, 0);
    assert.equal(aborted.abortedClients, 1);
    assert.equal(aborted.ok, false);
    assert.deepEqual(failedChecks({ pgbench: aborted }), [
      "zero connection errors",
      "pgbench exit code 0, no failed transactions",
    ]);
  });

  it("counts connection failures in pgbench's error lines", () => {
    const refused = parsePgbench(
      1,
      "",
      'pgbench: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  remaining connection slots ' +
        "are reserved for non-replication superuser connections\npgbench: error: could not create connection for client 52\n",
    );
    assert.equal(refused.connectionErrors, 2);
    assert.deepEqual(failedChecks({ pgbench: refused }), [
      "zero connection errors",
      "pgbench exit code 0, no failed transactions",
    ]);
  });
});
