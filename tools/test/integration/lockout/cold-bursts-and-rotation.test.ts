/**
 * Cold starts under a burst of 50 clients with no warm-up login, and a rotation under stale-password clients.
 * Setup and modes: ../../support/lockout.ts.
 */
import * as assert from "node:assert/strict";
import { type LoginOutcome, burst, sleep, tryLogin } from "../../../harness";
import { PASSWORD, STALE, describeLockout, refusedAsWrong, targets } from "../../support/lockout";

describeLockout("cold bursts and rotation", (ctx) => {
  describe("cold starts under a burst of 50 clients, no warm-up login", () => {
    for (const processes of ctx.full ? [1, 2] : [2]) {
      it(`20 fresh starts of ${processes} process(es): 0 correct logins refused`, async () => {
        const s = ctx.stack({ processes });
        const refused: string[] = [];
        for (let n = 0; n < 20; n++) {
          const b = await ctx.start(s, PASSWORD);
          const results = await burst([targets(b).tcp], 50);
          for (const r of results) if (!r.ok) refused.push(`start ${n}: ${r.error}`);
          for (const x of ctx.running.splice(0)) await x.stop("SIGQUIT");
        }
        assert.deepEqual(refused, [], `${refused.length} of 1000 correct logins refused`);
      });
    }
  });

  (ctx.full ? it : it.skip)(
    "rotation: stale-password clients hammer the rollover, then new-password clients all get in",
    async () => {
      const s = ctx.stack({ processes: 2 });
      // Before: the old pod serves the old password.
      const old = await ctx.start(s, STALE);
      assert.ok((await tryLogin(targets(old, STALE).tcp)).ok, "the old pod serves the old password");
      // 1. PostgreSQL: the new password, set the ordinary way. 2. Vault, 3. pulumi up: the new pod (a new
      // auth file) starts beside the old one, which then shuts down (maxSurge 1, maxUnavailable 0).
      const fresh = await ctx.start(s, PASSWORD);
      let hammering = true;
      const staleOnNew: LoginOutcome[] = [];
      const hammer = (async () => {
        while (hammering) {
          // The backends still hold the old password; the Service sends them to either pod.
          staleOnNew.push(
            ...(await burst([targets(fresh, STALE).tcp, ...targets(fresh, STALE).processes], 6)),
          );
          await burst([targets(old, STALE).tcp], 2);
        }
      })();
      await sleep(500);
      await old.stop("SIGINT");
      await sleep(500);
      hammering = false;
      await hammer;
      assert.ok(staleOnNew.length >= 6, "the stale clients reached the new pod");
      for (const o of staleOnNew) refusedAsWrong(o, "the old password on the new pod");
      // 4. The backends get the new password: every login succeeds, on every process.
      const t = targets(fresh);
      const results = await burst([t.tcp, ...t.processes], 60);
      const refused = results.filter((r) => !r.ok);
      assert.deepEqual(
        refused,
        [],
        `new-password logins refused after the rollover: ${JSON.stringify(refused.slice(0, 3))}`,
      );
    },
  );
});
