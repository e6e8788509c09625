/**
 * Cancel requests through the local fleet (tools/fleet/), TLS on both legs, on the release the stacks deploy
 * (stock PgBouncer 1.25.2), from a real driver (psycopg 3, libpq inside) and the harness's own client,
 * through a balancer that hands each new connection (a cancel request is one) to a random ready replica:
 *
 * 1. For 2 and 3 replicas x 1 and 2 processes, steady and while pgbouncer-0 is replaced, every cancel arrives
 *    when they are sent one at a time (each once the previous one's query has ended).
 * 2. A known upstream defect, pinned: a process that receives several cancels for queries of one TCP peer at
 *    once, before its connection to that peer is made, forwards the first and leaves the others to
 *    cancel_wait_timeout (cancels-patched.test.ts shows the patch that mends it).
 *
 * The negative control runs bursts on the stock release without peers across replicas and must lose cancels.
 * The cells are in tools/test/support/fleet-cancel-cells.ts.
 */
import * as assert from "node:assert/strict";
import type { CancelRound } from "../../support/fleet-cancels";
import {
  BURST,
  type Pinned,
  STOCK_BURSTS,
  asError,
  cells,
  cellTests,
  controlRound,
  runCell,
  sentIn,
  inLanes,
} from "../../support/fleet-cancel-cells";

const LANES = 3;

describe("GIVEN the local fleet (StatefulSet peers, TLS on both legs) on stock PgBouncer 1.25.2 and cancels through its balancer", function () {
  this.timeout(420_000);
  const pinned: Pinned = { rounds: [], dropped: [] };
  const sequential = cells("stock", "sequential", pinned);
  let control: { round?: CancelRound; error?: Error } = {};

  before(async () => {
    const started = Date.now();
    // The longest first (the 2 x 1 cell's pinned bursts wait out cancel_wait_timeout), and three fleets at a
    // time: its cells spend their time waiting (on queries, their one-at-a-time cancels, drains), about 12
    // CPU-s in 35 s alone, and this file was the last of npm test's to end, 50 s into it, two at a time.
    await inLanes(LANES, [
      ...sequential.map((c) => () => runCell(c)),
      async () => {
        control = await controlRound().then(
          (round) => ({ round }),
          (e: unknown) => ({ error: asError(e) }),
        );
      },
    ]);
    const sent = sentIn(sequential, control.round ? [control.round] : []);
    console.log(
      `      stock cancels: ${sent} cancels in ${((Date.now() - started) / 1000).toFixed(1)} s, ${LANES} fleets at a time`,
    );
  });

  describe("1. the release the stacks deploy, cancels sent one at a time", () => {
    cellTests(sequential, (name) => `stock, ${name}, sequential`);
  });

  describe(`2. KNOWN UPSTREAM DEFECT of PgBouncer 1.25.2: ${BURST} cancels at once for queries of one TCP peer`, () => {
    it(
      `THEN most wait out cancel_wait_timeout and are lost, in one of ${STOCK_BURSTS} bursts at most (should ` +
        "this fail, a release fixed it: docs/testing.md, docs/runbook.md and docs/architecture.md then change)",
      () => {
        if (pinned.error) throw pinned.error;
        assert.ok(pinned.rounds.length > 0);
        const timeouts = pinned.dropped.filter((l) => /cancel_wait_timeout/.test(l));
        console.log(
          `      stock: ${pinned.rounds.map((r) => `${r.lost}/${r.sent}`).join(", then ")} lost, ` +
            `${timeouts.length} cancel_wait_timeout lines in PgBouncer's log`,
        );
        for (const r of pinned.rounds) {
          assert.deepEqual(r.other, []);
          assert.equal(r.sent, BURST);
        }
        const lost = pinned.rounds.map((r) => r.lost);
        assert.ok(
          lost.some((n) => n >= BURST / 2),
          `lost ${lost.join(", ")} of ${BURST} in ${lost.length} bursts: has a release fixed the defect?`,
        );
        assert.ok(timeouts.length > 0, `no cancel_wait_timeout in the log:\n${pinned.dropped.join("\n")}`);
      },
    );
  });

  it("AND without peers across replicas (a pod's own only), cancels are lost: the test's power", () => {
    if (control.error) throw control.error;
    const r = control.round;
    assert.ok(r);
    console.log(`      negative control, 2 replicas without cross-replica peers: lost ${r.lost}/${r.sent}`);
    assert.deepEqual(r.other, []);
    assert.ok(r.lost > 0, `lost ${r.lost} of ${r.sent}`);
  });

  it("AND the real driver speaks libpq 17 (cancel_safe: PQcancelCreate)", () => {
    const libpq = sequential.flatMap((c) => c.steady).find((r) => r.libpq > 0)?.libpq ?? 0;
    assert.ok(libpq >= 170000, `libpq ${libpq}`);
  });
});
