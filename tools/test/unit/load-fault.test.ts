import * as assert from "node:assert/strict";
import { type Attempt, analyse } from "../../load/fault";

const ok = (worker: number, start: number, end: number): Attempt => ({ worker, start, end, ok: true });
const fail = (
  worker: number,
  start: number,
  end: number,
  stage: "connect" | "transaction",
  error = "e",
): Attempt => ({
  worker,
  start,
  end,
  ok: false,
  stage,
  error,
});

describe("fault run analysis (tools/load/fault)", () => {
  const timeline = { faultAt: 1000, upAt: 1400 };

  it("counts a transaction that began before the fault and failed as in flight", () => {
    const a = analyse([ok(0, 0, 500), fail(0, 990, 1010, "transaction"), ok(0, 1500, 1510)], timeline);
    assert.equal(a.failedInFlight, 1);
    assert.equal(a.failures, 1);
    assert.equal(a.failedDuringOutage, 0);
    assert.equal(a.failedAfterRecovery, 0);
    assert.equal(a.firstSuccessAfterUpMs, 110);
    assert.equal(a.recoveredMs, 500);
  });

  it("does not count as in flight a transaction sent just before the fault that PgBouncer refused to begin", () => {
    const a = analyse(
      [
        fail(0, 950, 1010, "transaction", "server shutting down"),
        fail(1, 800, 1010, "transaction", "server shutting down"),
        fail(2, 990, 1010, "transaction", "server conn crashed?"),
        ok(0, 1500, 1510),
      ],
      timeline,
    );
    assert.equal(a.refusedAtBegin, 1, "sent 50 ms before the signal: refused, not begun");
    assert.equal(a.failedInFlight, 2, "sent 200 ms before, or any other error: in flight");
  });

  it("separates failures during the outage from failures after the server was back", () => {
    const a = analyse(
      [
        fail(0, 1100, 1101, "connect", "connect ECONNREFUSED 127.0.0.1:1"),
        fail(1, 1200, 1201, "connect", "connect ECONNREFUSED 127.0.0.1:2"),
        fail(0, 1500, 1501, "transaction", "server login has been failing"),
        ok(0, 1600, 1620),
        ok(1, 1610, 1630),
      ],
      timeline,
    );
    assert.equal(a.failedDuringOutage, 2);
    assert.equal(a.failedAfterRecovery, 1);
    assert.equal(a.recoveredMs, 600);
    assert.equal(a.lastFailureMs, 501);
    // numbers are folded so equal errors group together
    assert.deepEqual(a.errors[0], { message: "connect: connect ECONNREFUSED #.#.#.#:#", count: 2 });
  });

  it("does not call a run recovered when failures go on to its end", () => {
    const a = analyse([ok(0, 1500, 1510), fail(0, 1600, 1601, "transaction")], timeline);
    assert.equal(a.recoveredMs, undefined);
  });

  it("calls a run without failures recovered at once", () => {
    const a = analyse([ok(0, 900, 1100), ok(0, 1500, 1510)], timeline);
    assert.equal(a.recoveredMs, 0);
    assert.equal(a.longestSuccessMs, 200);
  });
});
