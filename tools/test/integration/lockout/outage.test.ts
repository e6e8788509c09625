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
  hasServer,
  recoveryAfterOutageMs,
  sleep,
  tryLogin,
  untilServer,
} from "../../../harness";
import { PgClient } from "../../../harness/pgwire";
import type { StackSettings } from "../../../../stacks/settings";
import { PASSWORD, USER, describeLockout, targets } from "../../support/lockout";

/**
 * Correct logins to every process and twice to the TCP port: none is refused, and none waits for PgBouncer's
 * next server login (`server_login_retry` away), since one that only succeeds later would pass a bare success
 * check.
 */
async function allGetIn(s: StackSettings, t: ReturnType<typeof targets>, when: string): Promise<void> {
  const retryMs = s.pool.serverLoginRetrySeconds * 1000;
  for (const c of [...t.processes, t.tcp, t.tcp]) {
    const o = await tryLogin(c);
    assert.ok(o.ok, `a correct login ${when}: ${o.ok ? "" : o.error}`);
    assert.ok(o.ms < retryMs, `a correct login ${when} took ${o.ms} ms (server_login_retry ${retryMs} ms)`);
  }
}

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
                // The refused login started a server login (its pool's: the application's, or in auth_query
                // mode the lookup's): wait for it on the console, not by logging in.
                await untilServer(b.files[i], undefined);
              }
            }
            await allGetIn(s, t, "after the bound");
            if (held) await duringRefusals();
          } finally {
            for (const c of conns) c.close();
          }
        },
      );
    }
    if (ctx.mode === "auth-query") {
      // The lookup runs in auth_user's pool (PgBouncer's start_auth_query), which no client stays connected
      // to. A login waiting on it while PostgreSQL is down keeps retrying its server login; once no login
      // waits (here PgBouncer's query_wait_timeout ends the one that did; a server login failed with an
      // error other than SQLSTATE 57P03 ends them all, kill_pool_logins_server_error), the pool keeps its
      // failed server login, and the first login after the outage is refused while it starts the next one
      // (check_fast_fail).
      it("auth_query, with backends connected: a lookup pool the outage left failed, with nobody waiting on it, refuses the first login per process after the bound, which restarts its server login; then all get in", async () => {
        const s = ctx.stack({ processes: 2, pool: { queryWaitTimeoutSeconds: 1 } });
        const b = await ctx.start(s, PASSWORD);
        const t = targets(b);
        const lookupUser = s.credentials.authQuery?.user ?? "";
        const servers = (i: number) => adminCommand(b.files[i], "SHOW SERVERS");
        assert.ok(
          (await burst(t.processes, 2)).every((o) => o.ok),
          "served before the outage",
        );
        const conns = await Promise.all(t.processes.map((c) => PgClient.connect(c)));
        try {
          let during: LoginOutcome[] = [];
          await ctx.pg.restart({
            mode: "immediate",
            // PostgreSQL stays down until the logins below have left PgBouncer
            whileDown: async () => {
              for (const [i] of t.processes.entries()) {
                const started = Date.now();
                while (hasServer(await servers(i), lookupUser)) {
                  assert.ok(Date.now() - started < 5000, "the lookup pool kept its server after the crash");
                  await sleep(20);
                }
              }
              during = await Promise.all(t.processes.map((c) => tryLogin(c)));
            },
          });
          const back = Date.now();
          for (const o of during) {
            assert.ok(!o.ok, "a login was served while PostgreSQL was down");
            assert.match(o.error, /query_wait_timeout/);
          }
          await sleep(Math.max(0, back + recoveryAfterOutageMs(s.pool.serverLoginRetrySeconds) - Date.now()));
          for (const [i, c] of t.processes.entries()) {
            const atBound = await servers(i);
            assert.ok(
              hasServer(atBound, USER),
              `process ${i + 1}: the application's pool has no server at the bound`,
            );
            assert.ok(
              !hasServer(atBound, lookupUser),
              `process ${i + 1}: the lookup pool has a server again`,
            );
            const first = await tryLogin(c);
            assert.ok(
              !first.ok,
              `process ${i + 1}: the first login got in (the exception is gone: update components/credentials/README.md)`,
            );
            assert.match(first.error, /server login has been failing/);
            // The refused login started the lookup pool's server login: wait for it on the console.
            await untilServer(b.files[i], lookupUser);
          }
          await allGetIn(s, t, "after the lookup pool's retry");
        } finally {
          for (const c of conns) c.close();
        }
      });
    }
  });
});
