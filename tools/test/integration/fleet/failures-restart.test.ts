/**
 * A PostgreSQL restart with a change arriving while it is down, and a replica replaced as a rolling update
 * replaces it, on local fleets (tools/fleet/) under load (tools/test/support/fleet-scenarios.ts).
 */
import * as assert from "node:assert/strict";
import {
  CHANGED_POOL_SIZE,
  CLIENTS,
  type Replacement,
  type Restart,
  replaceReplica,
  restartPostgres,
  settle,
  valueOf,
  withWorld,
} from "../../support/fleet-scenarios";

describe(`GIVEN a local fleet (2 replicas) per scenario, ${CLIENTS} clients running transactions through each`, function () {
  this.timeout(180_000);
  const results: {
    restart?: { value?: Restart; error?: Error };
    replacement?: { value?: Replacement; error?: Error };
  } = {};

  before(async () => {
    [results.restart, results.replacement] = await Promise.all([
      settle(() => withWorld(restartPostgres)),
      settle(() => withWorld(replaceReplica)),
    ]);
  });

  it("THEN a PostgreSQL restart is queued through: no replica unready for longer than the restart; a change that arrived while it was down waits, then reaches every process", () => {
    const r = valueOf(results.restart);
    assert.ok(r.counts.transactions > CLIENTS, "the clients did not get through the restart");
    for (const u of r.unreadyMs)
      assert.ok(u <= r.restartMs, `a replica was unready ${u} ms, the restart took ${r.restartMs} ms`);
    assert.match(r.log0, /the change waits: generation 1 keeps serving/);
    assert.deepEqual(
      r.poolSizes,
      r.poolSizes.map(() => CHANGED_POOL_SIZE),
    );
  });

  it("THEN a replica replaced as a rolling update replaces it: refused logins, failed transactions, closed connections and lost cancels counted", () => {
    const r = valueOf(results.replacement);
    // counted and printed above; what must hold: the balancer never hands a login to the replica on its way out
    assert.deepEqual(r.counts.refusedLogins, []);
    assert.equal(r.cancels.sent, 10);
    assert.equal(r.readyAfter, true);
  });
});
