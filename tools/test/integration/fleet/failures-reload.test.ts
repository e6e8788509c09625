/**
 * Changes that would break server logins, as a reload, on the local fleet (tools/fleet/): a wrong password in
 * the auth file and a wrong server CA, each on a fleet of its own under load (tools/test/support/fleet-scenarios.ts).
 */
import * as assert from "node:assert/strict";
import {
  type Breaking,
  CLIENTS,
  SCENARIOS,
  TIMINGS,
  breakPassword,
  breakServerCa,
  settle,
  valueOf,
  withWorld,
} from "../../support/fleet-scenarios";

describe(`GIVEN a local fleet (2 replicas) per scenario, ${CLIENTS} clients running transactions through each`, function () {
  this.timeout(180_000);
  const results: {
    password?: { value?: Breaking; error?: Error };
    ca?: { value?: Breaking; error?: Error };
  } = {};

  before(async () => {
    [results.password, results.ca] = await Promise.all([
      settle(() => withWorld(breakPassword)),
      settle(() => withWorld(breakServerCa)),
    ]);
  });

  for (const key of ["password", "ca"] as const) {
    const scenario = SCENARIOS[key];
    it(`THEN ${scenario}, as a reload: the canary's server-login check refuses it and the canary turns unready before the hold ends; the other replica holds it back; no client sees a thing`, () => {
      const r = valueOf(results[key]);
      console.log(
        `      ${scenario}: canary unready ${r.unreadySeconds?.toFixed(1)} s after the swap; ` +
          `${r.served}/10 new logins served`,
      );
      assert.ok(r.unreadySeconds !== undefined, "the canary stayed ready");
      // before the hold ends, or the other replicas would apply it (measured 2.9 to 4.8 s: the check interval,
      // the check's own PgBouncer and server logins, one readiness tick, on busy cores)
      assert.ok(r.unreadySeconds < TIMINGS.canaryHoldSeconds, `canary unready after ${r.unreadySeconds} s`);
      // the check refused it: the serving PgBouncer never read the files
      assert.match(
        r.log0,
        /generation 2: a server login failed: .*(password authentication failed|TLS handshake error)/,
      );
      assert.match(r.log0, /refused the change/);
      assert.equal(r.otherUnready, false, "the other replica turned unready");
      assert.match(r.log1, /holding the change back/);
      assert.doesNotMatch(r.log1, /applied generation/);
      assert.equal(r.served, 10, "new logins through the balancer failed while the canary was out");
      assert.deepEqual(r.clients.failedTransactions, [], "a client's transaction failed");
      assert.equal(r.clients.closedConnections, 0, "a client's connection was closed");
      assert.deepEqual(r.clients.refusedLogins, [], "a client's login was refused");
      assert.equal(r.readyAgain, true, "the canary did not recover after the good files came back");
    });
  }
});
