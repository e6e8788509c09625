/**
 * PostgreSQL restarted while clients log in: the documented bound, with and without connected backends.
 * Setup and modes: ../../support/lockout.ts.
 */
import * as assert from "node:assert/strict";
import {
  type LoginOutcome,
  REFUSED_PASSWORD,
  adminCommand,
  burst,
  recoveryAfterOutageMs,
  sleep,
  tryLogin,
} from "../../../harness";
import { PgClient } from "../../../harness/pgwire";
import { PASSWORD, describeLockout, targets } from "../../support/lockout";

describeLockout("PostgreSQL down, the documented bound", (ctx) => {
  describe("PostgreSQL down: the documented bound", () => {
    for (const held of [true, false]) {
      it(
        held
          ? "with backends connected, from server_login_retry + one maintenance run + one server login after PostgreSQL is back, no correct login is refused or waits a server_login_retry"
          : "with nobody connected, at most the first login per process after the outage is refused (it restarts the server login); then all get in",
        async () => {
          const s = ctx.stack({ processes: 2 });
          const b = await ctx.start(s, PASSWORD);
          const t = targets(b);
          assert.ok(
            (await burst(t.processes, 2)).every((o) => o.ok),
            "served before the outage",
          );
          const conns = held ? await Promise.all(t.processes.map((c) => PgClient.connect(c))) : [];
          try {
            let during: Promise<LoginOutcome[]> | undefined;
            await ctx.pg.restart({
              mode: "immediate",
              downMs: 300,
              whileDown: () => void (during = burst(t.processes, 4)),
            });
            // PostgreSQL accepted again at the latest now: the bound counts from here.
            const back = Date.now();
            // While it is down a login waits for it or is refused, never for its password. Those logins
            // may still wait for PgBouncer's next server login: with backends connected the bound does not
            // wait for them; with nobody connected they must have left first.
            const duringRefusals = async () => {
              for (const o of (await during) ?? []) if (!o.ok) assert.doesNotMatch(o.error, REFUSED_PASSWORD);
            };
            if (!held) await duringRefusals();
            await sleep(
              Math.max(0, back + recoveryAfterOutageMs(s.pool.serverLoginRetrySeconds) - Date.now()),
            );
            if (!held) {
              // A pool left with a failed server login and no client retries only when a client arrives,
              // and refuses that one (PgBouncer's check_fast_fail).
              for (const [i, c] of t.processes.entries()) {
                const first = await tryLogin(c);
                if (first.ok) continue;
                assert.match(first.error, /server login has been failing/);
                const started = Date.now();
                // The refused login started a server login: wait for it on the console, not by logging in.
                while (!/\|idle\|/.test(await adminCommand(b.files[i], "SHOW SERVERS"))) {
                  assert.ok(Date.now() - started < 5000, "no server login after the refused one");
                  await sleep(20);
                }
              }
            }
            // Past the bound a login neither is refused nor waits for PgBouncer's next server login
            // (`server_login_retry` away): one that only succeeds later would pass a bare success check.
            const retryMs = s.pool.serverLoginRetrySeconds * 1000;
            for (const c of [...t.processes, t.tcp, t.tcp]) {
              const o = await tryLogin(c);
              assert.ok(o.ok, `a correct login after the bound: ${o.ok ? "" : o.error}`);
              assert.ok(
                o.ms < retryMs,
                `a correct login after the bound took ${o.ms} ms (server_login_retry ${retryMs} ms)`,
              );
            }
            if (held) await duringRefusals();
          } finally {
            for (const c of conns) c.close();
          }
        },
      );
    }
  });
});
