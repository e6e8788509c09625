/**
 * A password rotation on the local fleet (tools/fleet/), by the scheme of components/credentials/README.md
 * ("Rotation"): two application logins in the auth file; a rotation changes the idle one's password in
 * PostgreSQL, then in the auth file (the kubelet's swap, as `pulumi up` makes it), and once every process has
 * applied it the backends may move to it; the login they used before stays valid until the next rotation
 * retires it. Under load, through the balancer: the backends that hold the login in use (open connections
 * running transactions, and new logins one after the other) must see nothing.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { buildCredentials } from "../../../../components/credentials";
import { type Fleet, fleetSettings, startFleet } from "../../../fleet/fleet";
import { AUTH_FILE, VOLUMES } from "../../../fleet/render";
import type { Conn } from "../../../harness/postgres";
import { PgClient } from "../../../harness/pgwire";
import { sleep } from "../../../harness/proc";
import { HARNESS_APP_USER, harnessVaultData } from "../../../harness/stack";
import { type Load, type LoadCounts, startLoad } from "../../../fleet/load";

const TIMINGS = { checkSeconds: 1, canaryHoldSeconds: 3, failureSeconds: 5, drainSeconds: 5 };
/** The swap to every process applying it: the check interval, the hold, a check each, and slack for 2 busy cores. */
const APPLY_BOUND_MS = (TIMINGS.checkSeconds * 2 + TIMINGS.canaryHoldSeconds + 10) * 1000;
/** The backends' transactions: each client's, then its pause (held connections, idle between requests). */
const LOAD = { txSeconds: 0.05, pauseSeconds: 0.5 };
const SECOND_USER = `${HARNESS_APP_USER}_b`;
const PASSWORDS = {
  a1: "rotation-a-1",
  b1: "rotation-b-1",
  b2: "rotation-b-2",
  a2: "rotation-a-2",
  stats: "st",
};

/** New logins one after the other, each running a query, until stopped: a backend that keeps connecting. */
interface Logins {
  stop(): Promise<{ ok: number; failed: string[] }>;
}

function keepLoggingIn(conn: Conn): Logins {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const c = await PgClient.connect(conn, { applicationName: "rotation-logins", timeoutMs: 10_000 });
        await c.query("SELECT 1");
        c.close();
        ok++;
      } catch (e) {
        failed.push((e as Error).message);
      }
      await sleep(200);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

/** The auth file the program builds from a Vault secret holding these passwords. */
function authFile(fleet: Fleet, a: string, b: string): string {
  const s = fleet.settings;
  return buildCredentials(
    s.credentials,
    { statsUser: s.exporter.statsUser, pgbouncerPort: s.workload.port },
    {
      data: harnessVaultData(s, {
        user: HARNESS_APP_USER,
        password: a,
        statsPassword: PASSWORDS.stats,
        secondUser: SECOND_USER,
        secondPassword: b,
      }),
    },
  ).authFile;
}

/** Swaps the auth file on every replica and waits until every process logged that it applied it. */
async function rollOutAuthFile(fleet: Fleet, text: string): Promise<number> {
  const applied = (log: string) => (log.match(/applied generation \d+/g) ?? []).length;
  const before = fleet
    .replicas()
    .flatMap((r) => r.processes.map((p) => applied(fs.readFileSync(p.logFile, "utf8"))));
  const swaps = await fleet.updateMount(VOLUMES.auth, () => ({ [AUTH_FILE]: text }));
  const swapAt = Math.min(...swaps.values());
  for (;;) {
    const now = fleet
      .replicas()
      .flatMap((r) => r.processes.map((p) => applied(fs.readFileSync(p.logFile, "utf8"))));
    if (now.every((n, i) => n > before[i])) return Date.now() - swapAt;
    if (Date.now() - swapAt > APPLY_BOUND_MS) {
      throw new Error(
        `the auth file was not applied everywhere within ${APPLY_BOUND_MS} ms: ${now.join()} vs ${before.join()}`,
      );
    }
    await sleep(100);
  }
}

function print(label: string, c: LoadCounts, logins: { ok: number; failed: string[] }): void {
  console.log(
    `      ${label}: ${c.transactions} transactions on ${c.clients} open connections, ` +
      `${c.failedTransactions.length} failed, ${c.closedConnections} closed; ` +
      `${logins.ok} new logins, ${logins.failed.length} refused`,
  );
}

describe("GIVEN the local fleet (2 replicas) with two application logins, the backends on the first", function () {
  this.timeout(240_000);
  let fleet: Fleet;
  const as = (user: string, password: string): Conn => ({ ...fleet.conn, user, password });

  before(async () => {
    fleet = await startFleet({
      settings: fleetSettings("prod", { "pgbouncer.replicas": "2" }),
      timings: TIMINGS,
      appPassword: PASSWORDS.a1,
      secondPassword: PASSWORDS.b1,
      statsPassword: PASSWORDS.stats,
      preStopDelaySeconds: 1,
    });
    assert.ok(fleet.settings.credentials.secondLogin, "prod has credentials.secondLogin");
  });
  after(async () => {
    await fleet?.stop();
  });

  it("THEN a rotation of the idle login refuses none of the backends on the first, closes none of their connections, and the new password logs in once every process applied it", async () => {
    const load: Load = await startLoad(as(HARNESS_APP_USER, PASSWORDS.a1), 30, LOAD);
    const logins = keepLoggingIn(as(HARNESS_APP_USER, PASSWORDS.a1));
    let counts: LoadCounts;
    let tookMs: number;
    try {
      // 1. PostgreSQL first: the idle login's new password
      await fleet.world.pg.psql(`ALTER ROLE "${SECOND_USER}" PASSWORD '${PASSWORDS.b2}'`);
      // 2. then Vault, and `pulumi up`: the auth file on every pod
      tookMs = await rollOutAuthFile(fleet, authFile(fleet, PASSWORDS.a1, PASSWORDS.b2));
      // 3. the rotation says the backends may move now: the new password logs in, on whichever replica
      for (let i = 0; i < 20; i++) {
        const c = await PgClient.connect(as(SECOND_USER, PASSWORDS.b2), { timeoutMs: 10_000 });
        await c.query("SELECT 1");
        c.close();
      }
      await sleep(1000);
    } finally {
      counts = await load.stop();
    }
    const l = await logins.stop();
    print(
      `rotating ${SECOND_USER} (applied everywhere ${(tookMs / 1000).toFixed(1)} s after the swap)`,
      counts,
      l,
    );
    assert.deepEqual(counts.refusedLogins, []);
    assert.deepEqual(counts.failedTransactions, []);
    assert.equal(counts.closedConnections, 0);
    assert.ok(counts.transactions > 0 && l.ok > 0, "no load ran");
    assert.deepEqual(l.failed, []);
    await assert.rejects(PgClient.connect(as(SECOND_USER, PASSWORDS.b1)), /SASL authentication failed/);
  });

  it("AND with the backends moving to the second login, both logins are served throughout; the next rotation retires the first one's password, which is then refused", async () => {
    // backends that moved (the current login) and backends that have not yet (the previous one)
    const moved = await startLoad(as(SECOND_USER, PASSWORDS.b2), 20, LOAD);
    const movedLogins = keepLoggingIn(as(SECOND_USER, PASSWORDS.b2));
    const stale = await startLoad(as(HARNESS_APP_USER, PASSWORDS.a1), 10, LOAD);
    const staleLogins = keepLoggingIn(as(HARNESS_APP_USER, PASSWORDS.a1));
    let staleCounts: LoadCounts;
    let movedCounts: LoadCounts;
    let stale2: { ok: number; failed: string[] };
    try {
      await sleep(3000);
      stale2 = await staleLogins.stop();
      staleCounts = await stale.stop();
      // the next rotation: the first login is the idle one now
      await fleet.world.pg.psql(`ALTER ROLE "${HARNESS_APP_USER}" PASSWORD '${PASSWORDS.a2}'`);
      await rollOutAuthFile(fleet, authFile(fleet, PASSWORDS.a2, PASSWORDS.b2));
      await sleep(1000);
    } finally {
      movedCounts = await moved.stop();
    }
    const m = await movedLogins.stop();
    print(`the previous login (${HARNESS_APP_USER}) while the backends move`, staleCounts, stale2);
    print(`the current login (${SECOND_USER}) through the next rotation`, movedCounts, m);
    for (const [c, l] of [
      [staleCounts, stale2],
      [movedCounts, m],
    ] as const) {
      assert.deepEqual(c.refusedLogins, []);
      assert.deepEqual(c.failedTransactions, []);
      assert.equal(c.closedConnections, 0);
      assert.deepEqual(l.failed, []);
      assert.ok(l.ok > 0);
    }
    // retired: the first login's old password is refused by the pooler; its new one logs in
    await assert.rejects(PgClient.connect(as(HARNESS_APP_USER, PASSWORDS.a1)), /SASL authentication failed/);
    const c = await PgClient.connect(as(HARNESS_APP_USER, PASSWORDS.a2));
    c.close();
  });
});
