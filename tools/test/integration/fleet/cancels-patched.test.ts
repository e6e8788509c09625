/**
 * Cancel requests through the local fleet (tools/fleet/), TLS on both legs, on PgBouncer 1.25.2 built with the
 * peer-pool patch (tools/harness/patches/; not what the stacks deploy): the upstream defect that
 * cancels-stock.test.ts pins is mended by it, and with it the fleet's design delivers every cancel of bursts
 * of concurrent ones, for 2 and 3 replicas x 1 and 2 processes, steady and while pgbouncer-0 is replaced.
 * The cells are in tools/test/support/fleet-cancel-cells.ts.
 */
import * as assert from "node:assert/strict";
import {
  BURST,
  CANCEL_BOUND_SECONDS,
  PATCH,
  type Pinned,
  cells,
  cellTests,
  runCell,
  sentIn,
  timing,
  twoAtATime,
} from "../../support/fleet-cancel-cells";

describe(`GIVEN the local fleet (StatefulSet peers, TLS on both legs) on PgBouncer 1.25.2 built with ${PATCH} and cancels through its balancer`, function () {
  this.timeout(420_000);
  const pinned: Pinned = { rounds: [], dropped: [] };
  const bursts = cells("patched", "burst", pinned);

  before(async () => {
    const started = Date.now();
    await twoAtATime(bursts.map((c) => () => runCell(c)));
    console.log(
      `      patched cancels: ${sentIn(bursts)} cancels in ${((Date.now() - started) / 1000).toFixed(1)} s, two fleets at a time`,
    );
  });

  describe(`2. the upstream defect of PgBouncer 1.25.2 mended: ${BURST} cancels at once for queries of one TCP peer`, () => {
    it("THEN the burst that stock 1.25.2 leaves to cancel_wait_timeout loses none", () => {
      if (pinned.error) throw pinned.error;
      const r = pinned.rounds[0];
      assert.ok(r);
      console.log(`      patched: ${r.cancelled}/${r.sent} arrived, slowest: ${timing([r])}`);
      assert.deepEqual(r.other, []);
      assert.equal(r.sent, BURST);
      assert.equal(r.lost, 0, pinned.dropped.join("\n"));
      assert.equal(r.cancelled, r.sent);
      assert.ok(r.slowest < CANCEL_BOUND_SECONDS, `slowest ${r.slowest} s (${timing([r])})`);
      assert.deepEqual(pinned.dropped, []);
    });
  });

  describe("3. bursts of concurrent cancels", () => {
    cellTests(bursts, (name) => `patched, ${name}, bursts`);
  });
});
