import * as assert from "node:assert/strict";
import {
  type Attempt,
  ERROR_KINDS,
  type FaultRun,
  type FaultTimeline,
  analyse,
  errorKind,
  formatFault,
  markdownTable,
  minimumSeconds,
  readyAtFromLog,
} from "../../load/fault";

const ok = (worker: number, start: number, end: number, replica?: number): Attempt => ({
  worker,
  start,
  end,
  ok: true,
  ...(replica !== undefined ? { replica } : {}),
});
const fail = (
  worker: number,
  start: number,
  end: number,
  stage: "connect" | "transaction",
  error = "e",
  more: Partial<Attempt> = {},
): Attempt => ({ worker, start, end, ok: false, stage, error, ...more });

/** A PostgreSQL restart: down at 1000, accepting again at 1400. */
const restart: FaultTimeline = { faultAt: 1000, upAt: 1400 };

/**
 * A replacement of pgbouncer-0: out of the endpoints at 1000, INT at 2000 (preStop 1 s), the drain may close
 * its clients from 4000 (drainSeconds 3, less the script's whole second), stopped at 5000, ready at 8000.
 */
const replacement: FaultTimeline = {
  faultAt: 1000,
  hitAt: 2000,
  upAt: 8000,
  drain: { replica: 0, signalledAt: 2000, closingFrom: 4000, stoppedAt: 5000 },
};

const closed = "server closed the connection unexpectedly";

describe("fault run analysis (tools/load/fault)", () => {
  it("counts a transaction that began before the fault and failed as in flight", () => {
    const a = analyse([ok(0, 0, 500), fail(0, 990, 1010, "transaction"), ok(0, 1500, 1510)], restart);
    assert.equal(a.byKind["in-flight"].count, 1);
    assert.equal(a.failures, 1);
    assert.equal(a.byKind.outage.count, 0);
    assert.equal(a.byKind["after-recovery"].count, 0);
    assert.equal(a.firstSuccessAfterUpMs, 110);
    assert.equal(a.recoveredMs, 500);
  });

  it("excludes no error: a transaction refused with 'server shutting down' just before the fault is in flight", () => {
    const a = analyse(
      [
        fail(0, 950, 1010, "transaction", "server shutting down"),
        fail(1, 800, 1010, "transaction", "server shutting down"),
        fail(2, 990, 1010, "transaction", "server conn crashed?"),
        ok(0, 1500, 1510),
      ],
      restart,
    );
    assert.equal(a.failures, 3);
    assert.equal(a.byKind["in-flight"].count, 3, "sent 50 ms or 200 ms before the fault, or any error");
    assert.deepEqual(a.byKind["in-flight"].errors, [
      { message: "transaction: server shutting down", count: 2 },
      { message: "transaction: server conn crashed?", count: 1 },
    ]);
  });

  it("separates refused logins, failures during the outage and failures after the server was back", () => {
    const a = analyse(
      [
        fail(0, 1100, 1101, "connect", "connect ECONNREFUSED 127.0.0.1:1"),
        fail(1, 1200, 1201, "connect", "connect ECONNREFUSED 127.0.0.1:2"),
        fail(1, 1300, 1301, "transaction", "server login has been failing"),
        fail(0, 1500, 1501, "transaction", "server login has been failing"),
        fail(1, 1550, 1551, "connect", "pooler is shutting down"),
        ok(0, 1600, 1620),
        ok(1, 1610, 1630),
      ],
      restart,
    );
    assert.equal(a.byKind["refused-login"].count, 3, "a refused login is one, during the outage or after it");
    assert.equal(a.byKind.outage.count, 1);
    assert.equal(a.byKind["after-recovery"].count, 1);
    assert.equal(a.recoveredMs, 600);
    assert.equal(a.lastFailureMs, 551);
    // numbers are folded so equal errors group together
    assert.deepEqual(a.byKind["refused-login"].errors[0], {
      message: "connect: connect ECONNREFUSED #.#.#.#:#",
      count: 2,
    });
  });

  it("puts a failure that began and ended before the fault apart: not the fault's doing", () => {
    const a = analyse([fail(0, 100, 200, "transaction"), ok(0, 300, 310), ok(0, 1500, 1510)], restart);
    assert.equal(a.byKind["before-fault"].count, 1);
    assert.equal(a.byKind["in-flight"].count, 0);
  });

  it("sorts every error into exactly one kind: the kinds add up to every failure", () => {
    const attempts = [
      fail(0, 100, 200, "transaction"),
      fail(1, 900, 1100, "transaction"),
      fail(2, 1050, 1060, "connect"),
      fail(3, 1050, 1060, "transaction"),
      fail(4, 1500, 1510, "transaction"),
      ok(5, 1500, 1510),
    ];
    const a = analyse(attempts, restart);
    assert.deepEqual(
      ERROR_KINDS.map((k) => a.byKind[k].count),
      [1, 0, 1, 1, 1, 1],
      "in-flight, drain-closed, refused-login, outage, after-recovery, before-fault",
    );
    assert.equal(
      ERROR_KINDS.reduce((n, k) => n + a.byKind[k].count, 0),
      a.failures,
    );
  });

  describe("a pod replacement (endpoint removal, preStop, INT, drain, new pod)", () => {
    it("counts a connection of the replaced pod closed after drainSeconds as closed at the drain's end", () => {
      const e = fail(0, 4200, 4900, "transaction", closed, { closed: true, replica: 0 });
      assert.equal(errorKind(e, replacement), "drain-closed");
    });

    it("does not: another replica's connection, one closed before the drain's end, an error on an open connection", () => {
      const other = fail(0, 4200, 4900, "transaction", closed, { closed: true, replica: 1 });
      const early = fail(0, 3000, 3010, "transaction", closed, { closed: true, replica: 0 });
      const open = fail(0, 4200, 4210, "transaction", "division by zero", { closed: false, replica: 0 });
      const unknown = fail(0, 4200, 4900, "transaction", closed, { closed: true });
      for (const a of [other, early, open, unknown]) assert.equal(errorKind(a, replacement), "outage");
    });

    it("counts as in flight a transaction running at the INT, not at the endpoint removal", () => {
      assert.equal(
        errorKind(fail(0, 1990, 2010, "transaction", closed, { closed: true, replica: 0 }), replacement),
        "in-flight",
      );
      assert.equal(
        errorKind(fail(0, 990, 1010, "transaction", "x", { replica: 0 }), replacement),
        "before-fault",
      );
      assert.equal(errorKind(fail(0, 1500, 1510, "transaction", "x", { replica: 0 }), replacement), "outage");
    });

    it("counts the clients that were on the replaced pod when it left", () => {
      const a = analyse(
        [
          ok(0, 900, 910, 0),
          ok(1, 950, 960, 1),
          ok(2, 800, 810, 0),
          ok(2, 990, 995, 1), // moved to pgbouncer-1 before the fault
          fail(3, 980, 990, "transaction", closed, { closed: true, replica: 0 }),
          fail(0, 4100, 4900, "transaction", closed, { closed: true, replica: 0 }),
          ok(0, 4910, 4920, 1),
        ],
        replacement,
      );
      assert.equal(a.onReplacedAtFault, 1);
      assert.equal(a.byKind["drain-closed"].count, 1);
      assert.equal(a.byKind["before-fault"].count, 1);
    });

    it("says when the run ended before the new pod was back", () => {
      assert.equal(analyse([ok(0, 7000, 7010, 1)], replacement).endedBeforeUp, true);
      assert.equal(analyse([ok(0, 8100, 8110, 1)], replacement).endedBeforeUp, false);
      assert.equal(analyse([ok(0, 8100, 8110, 1)], restart).onReplacedAtFault, undefined);
    });
  });

  it("does not call a run recovered when failures go on to its end", () => {
    const a = analyse([ok(0, 1500, 1510), fail(0, 1600, 1601, "transaction")], restart);
    assert.equal(a.recoveredMs, undefined);
  });

  it("calls a run without failures recovered at once", () => {
    const a = analyse([ok(0, 900, 1100), ok(0, 1500, 1510)], restart);
    assert.equal(a.recoveredMs, 0);
    assert.equal(a.longestSuccessMs, 200);
  });

  it("prints every kind with its count and its messages, and one table row per run", () => {
    const attempts = [
      ok(0, 900, 910, 0),
      fail(0, 4100, 4900, "transaction", closed, { closed: true, replica: 0 }),
      fail(1, 1200, 1201, "connect", "pooler is shutting down"),
      ok(0, 8100, 8110, 1),
    ];
    const run: FaultRun = {
      fault: "pod-replacement",
      description: "pgbouncer-0 replaced",
      timeline: replacement,
      analysis: analyse(attempts, replacement),
      options: { workers: 2, seconds: 15, atSeconds: 1, accounts: 0 },
      preStopMs: 1000,
      drainSeconds: 3,
      balancerRefused: 0,
      loadavg: [1, 2, 3],
    };
    const text = formatFault(run);
    assert.match(text, /^ {6}1 {2}connections to the replaced pod closed at the end of its drain/m);
    assert.match(text, /^ {13}1 x transaction: server closed the connection unexpectedly$/m);
    assert.match(text, /^ {6}1 {2}logins refused or broken\n {13}1 x connect: pooler is shutting down$/m);
    assert.match(text, /^ {6}0 {2}transactions in flight when the fault hit/m);
    assert.match(text, /1 of 2 clients were on the replaced pod when it left/);
    assert.equal(
      markdownTable([run]).split("\n")[2],
      "| pod-replacement | 7.00 s | 0 | 1 | 1 | 0 | 0 | 0 | 2 | 7.10 s |",
    );
  });

  it("makes a run long enough for the replacement: the fault, preStop, the drain and 10 s", () => {
    assert.equal(minimumSeconds(5, 10, 30), 55);
  });

  it("takes PostgreSQL's own time for when it accepted again: the last 'ready' line after the fault", () => {
    const log = [
      "2026-12-06 23:01:59.763 UTC [26427] LOG:  database system is ready to accept connections",
      "2026-12-06 23:01:59.853 UTC [26427] LOG:  received immediate shutdown request",
      "2026-12-06 23:01:59.892 UTC [26441] LOG:  database system was not properly shut down; automatic recovery in progress",
      "2026-12-06 23:01:59.898 UTC [26438] LOG:  database system is ready to accept connections",
      "",
    ].join("\n");
    const fault = Date.parse("2026-12-06T23:01:59.850Z");
    assert.equal(readyAtFromLog(log, fault), Date.parse("2026-12-06T23:01:59.898Z"));
    assert.equal(readyAtFromLog(log, Date.parse("2026-12-06T23:02:00.000Z")), undefined, "none since");
    assert.equal(readyAtFromLog("LOG:  database system is ready to accept connections", 0), undefined);
  });
});
