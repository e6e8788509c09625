/**
 * A change that would break server logins, as a roll, on the local fleet (tools/fleet/): pgbouncer-0 replaced
 * with a wrong password, then with a password PostgreSQL does not have yet (tools/test/support/fleet-scenarios.ts).
 */
import * as assert from "node:assert/strict";
import {
  type BrokenRoll,
  CLIENTS,
  SLACK_SECONDS,
  TIMINGS,
  brokenRoll,
  settle,
  valueOf,
  withWorld,
} from "../../support/fleet-scenarios";

describe(`GIVEN a local fleet (2 replicas) per scenario, ${CLIENTS} clients running transactions through each`, function () {
  this.timeout(180_000);
  let result: { value?: BrokenRoll; error?: Error } | undefined;

  before(async () => {
    result = await settle(() => withWorld(brokenRoll));
  });

  it("THEN a wrong password as a roll: the new pgbouncer-0 never turns ready (the rolling update stops there), pgbouncer-1 serves, and the good files make it ready; a pod started with a password PostgreSQL does not have yet turns ready by itself once it does", () => {
    const r = valueOf(result);
    console.log(
      `      roll with a wrong password: ${r.served}/10 new logins served, ever ready: ${r.everReady}`,
    );
    assert.equal(r.everReady, false, "the pod with a wrong password turned ready");
    assert.match(r.log0, /generation 1: a server login failed: .*password authentication failed/);
    assert.match(
      r.log0,
      /stays unready until they pass it or a change comes: the files it started with failed the server-login check/,
    );
    assert.equal(r.served, 10);
    assert.deepEqual(r.clients.refusedLogins, []);
    assert.equal(r.readyAfterFix, true);
    // and a pod that started ahead of PostgreSQL turns ready by itself once PostgreSQL agrees
    console.log(
      `      started ahead of PostgreSQL: ready ${r.readyAfterPostgres?.toFixed(1)} s after it agreed`,
    );
    assert.ok(
      r.readyAfterPostgres !== undefined,
      `it was ready before PostgreSQL agreed, or stayed unready 20 s after:\n${r.aheadLog?.slice(-3000)}`,
    );
    assert.ok(r.readyAfterPostgres < TIMINGS.checkSeconds + SLACK_SECONDS);
  });
});
