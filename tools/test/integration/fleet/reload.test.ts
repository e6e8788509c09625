/**
 * Reloads on the local fleet (tools/fleet/), as the kubelet delivers them: the ConfigMap's and Secret's
 * mounted files replaced atomically (`..data`), each replica's script validating the new files and sending
 * SIGHUP, replica 0 first (the canary), the others after the hold and only while the canary is ready.
 * 200 clients hold their connections and run transactions throughout; a change must close none of them and
 * fail none of their transactions. A change PgBouncer refuses is held back (the canary turns unready), and
 * the negative control shows what that refusal saves: the same ini given to PgBouncer by a plain SIGHUP
 * leaves it half-configured.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { PGBOUNCER_RELEASE } from "../../../../components/pgbouncer";
import { type Fleet, fleetSettings, startFleet } from "../../../fleet/fleet";
import { INI_FILE, VOLUMES } from "../../../fleet/render";
import {
  type PgBouncerHandle,
  authFileText,
  harnessIni,
  localRewrites,
  scramSecret,
  startPgBouncer,
  startPostgres,
} from "../../../harness";
import type { PostgresHandle } from "../../../harness/postgres";
import { PgClient } from "../../../harness/pgwire";
import { sleep } from "../../../harness/proc";
import { type Load, type LoadCounts, configValue, configValues, startLoad } from "../../../fleet/load";

const TIMINGS = { checkSeconds: 1, canaryHoldSeconds: 4, failureSeconds: 5, drainSeconds: 10 };
/**
 * The script's 1-s ticks (each forks a few commands), the validation's throwaway PgBouncer and SHOW
 * CONFIG's psql, on 2 cores shared with the rest of npm test: slack on top of the watch interval. Measured:
 * 1.7 to 2.7 s for the canary's processes on a quiet machine, up to 6.4 s in a full npm test at load 13.
 */
const SLACK_SECONDS = 8;
const CLIENTS = 200;

const settings = fleetSettings("prod", {
  "pgbouncer.replicas": "2",
  "pgbouncer.processesPerPod": "2",
  "pool.maxDbConnections": "20",
  "pool.defaultPoolSize": "20",
});
/** The change: a pool size and a timeout. */
const changed = fleetSettings("prod", {
  "pgbouncer.replicas": "2",
  "pgbouncer.processesPerPod": "2",
  "pool.maxDbConnections": "25",
  "pool.defaultPoolSize": "25",
  "pool.queryWaitTimeoutSeconds": "60",
});

interface Applied {
  readonly name: string;
  /** Seconds from the swap until SHOW CONFIG showed the new values; undefined if it never did. */
  readonly seconds?: number;
}

/** For every process, when SHOW CONFIG shows `want` (polled every 200 ms for `maxMs`). */
async function whenApplied(fleet: Fleet, swapAt: number, want: Record<string, string>, maxMs: number) {
  return Promise.all(
    fleet.replicas().flatMap((r) =>
      r.processes.map(async (p): Promise<Applied> => {
        const name = `${r.name}/${p.process}`;
        while (Date.now() - swapAt < maxMs) {
          const values = await configValues(p.socketDir, r.port, Object.keys(want));
          if (Object.values(want).every((v, i) => values[i] === v)) {
            return { name, seconds: (Date.now() - swapAt) / 1000 };
          }
          await sleep(200);
        }
        return { name };
      }),
    ),
  );
}

/** The shared ini with a line PgBouncer refuses, early in [pgbouncer]: every later line would be lost. */
function refusedIni(ini: string): string {
  return ini.replace(/^pool_mode = transaction$/m, "pool_mode = sometimes");
}

function report(label: string, c: LoadCounts): void {
  console.log(
    `      ${label}: ${c.clients} clients, ${c.transactions} transactions, ${c.failedTransactions.length} failed, ` +
      `${c.closedConnections} connections closed, ${c.refusedLogins.length} logins refused`,
  );
}

describe(`GIVEN the local fleet (2 replicas x 2 processes) and ${CLIENTS} clients running transactions`, function () {
  this.timeout(180_000);
  let fleet: Fleet;
  let load: Load;

  before(async () => {
    fleet = await startFleet({ settings, timings: TIMINGS, preStopDelaySeconds: 1 });
    // 0.2 s transactions, each client pausing 2 s after each (as a backend's pooled connections idle between
    // requests): about 90 transactions a second, 200 connections held, and 2 cores left for the rest of npm test
    load = await startLoad(fleet.conn, CLIENTS, { txSeconds: 0.2, pauseSeconds: 2 });
  });
  after(async () => {
    await load?.stop();
    await fleet?.stop();
  });

  it(
    `THEN a changed pool size and timeout reach SHOW CONFIG of every process: the canary's within ` +
      `${TIMINGS.checkSeconds + SLACK_SECONDS} s, the others' after the hold (${TIMINGS.canaryHoldSeconds} s), ` +
      "with 0 connections closed and 0 transactions failed",
    async () => {
      const before = load.counts();
      const specs = fleet.specs({ settings: changed });
      const swaps = await fleet.updateMount(VOLUMES.config, (o) => specs[o].mounts[VOLUMES.config]);
      const swapAt = Math.min(...swaps.values());
      const applied = await whenApplied(
        fleet,
        swapAt,
        { default_pool_size: "25", max_db_connections: "25", query_wait_timeout: "60" },
        (TIMINGS.canaryHoldSeconds + TIMINGS.checkSeconds + SLACK_SECONDS + 5) * 1000,
      );
      await sleep(1000);
      const after = load.counts();
      console.log(
        `      applied after: ${applied.map((a) => `${a.name} ${a.seconds?.toFixed(1)} s`).join(", ")}`,
      );
      report("during the reload", {
        ...after,
        transactions: after.transactions - before.transactions,
      });
      for (const a of applied) {
        assert.ok(a.seconds !== undefined, `${a.name} never showed the new values`);
        if (a.name.startsWith("pgbouncer-0/")) {
          assert.ok(a.seconds <= TIMINGS.checkSeconds + SLACK_SECONDS, `${a.name}: ${a.seconds} s`);
        } else {
          assert.ok(
            a.seconds >= TIMINGS.canaryHoldSeconds,
            `${a.name} did not wait for the hold: ${a.seconds} s`,
          );
          assert.ok(
            a.seconds <= TIMINGS.canaryHoldSeconds + TIMINGS.checkSeconds + SLACK_SECONDS,
            `${a.name}: ${a.seconds} s`,
          );
        }
      }
      assert.deepEqual(after.failedTransactions, []);
      assert.equal(after.closedConnections, 0);
      assert.deepEqual(after.refusedLogins, []);
      assert.ok(after.transactions > before.transactions + CLIENTS, "the clients did not keep running");
    },
  );

  it(
    "AND an ini PgBouncer refuses: the old config keeps serving, the canary turns unready, the others hold it " +
      "back; 0 transactions fail",
    async () => {
      const before = load.counts();
      const good = fleet.specs({ settings: changed });
      const swaps = await fleet.updateMount(VOLUMES.config, (o) => ({
        [INI_FILE]: refusedIni(good[o].mounts[VOLUMES.config][INI_FILE]),
      }));
      const swapAt = Math.min(...swaps.values());
      let unreadyAt: number | undefined;
      while (
        Date.now() - swapAt <
        (TIMINGS.canaryHoldSeconds + TIMINGS.checkSeconds + SLACK_SECONDS) * 1000
      ) {
        if (unreadyAt === undefined && !fleet.replica(0).ready()) unreadyAt = Date.now();
        await sleep(100);
      }
      assert.ok(unreadyAt !== undefined, "the canary stayed ready");
      console.log(`      canary unready ${((unreadyAt - swapAt) / 1000).toFixed(1)} s after the swap`);
      assert.ok(unreadyAt - swapAt <= (TIMINGS.checkSeconds + SLACK_SECONDS) * 1000);
      assert.equal(fleet.replica(0).ready(), false, "the canary must stay unready until the next change");
      assert.equal(fleet.replica(1).ready(), true);
      // past the hold: the other replica held the change back, every process still runs the last good config
      for (const r of fleet.replicas()) {
        for (const p of r.processes) {
          assert.deepEqual(
            await configValues(p.socketDir, r.port, ["pool_mode", "client_tls_sslmode", "default_pool_size"]),
            ["transaction", "require", "25"],
          );
          assert.match(
            fs.readFileSync(p.logFile, "utf8"),
            r.ordinal === 0 ? /refused the change/ : /holding the change back/,
          );
        }
      }
      // new logins through the balancer reach the ready replica; TLS is still demanded
      const c = await PgClient.connect(fleet.conn);
      c.close();
      await assert.rejects(PgClient.connect({ ...fleet.conn, tls: { sslmode: "disable" } }), /SSL required/);
      const after = load.counts();
      report("during the refused change", {
        ...after,
        transactions: after.transactions - before.transactions,
      });
      assert.deepEqual(after.failedTransactions, []);
      assert.equal(after.closedConnections, 0);
      assert.deepEqual(after.refusedLogins, []);

      // the next good change clears the canary
      await fleet.updateMount(VOLUMES.config, (o) => good[o].mounts[VOLUMES.config]);
      const t0 = Date.now();
      while (!fleet.replica(0).ready() && Date.now() - t0 < 10_000) await sleep(100);
      assert.equal(fleet.replica(0).ready(), true, "the canary stayed unready after a good change");
    },
  );
});

describe(`GIVEN PgBouncer ${PGBOUNCER_RELEASE.version} reloaded by a plain SIGHUP (no validation): the negative control`, function () {
  this.timeout(60_000);
  let pg: PostgresHandle;
  let bouncer: PgBouncerHandle;
  let iniFile: string;
  const one = fleetSettings("prod");

  before(async () => {
    pg = await startPostgres();
    bouncer = await startPgBouncer({
      authFile: authFileText([{ user: one.exporter.statsUser, secret: scramSecret("x") }]),
      ini: (f) => {
        iniFile = f.iniFile;
        return harnessIni(one, { type: one.credentials.authType }, localRewrites(f, pg));
      },
    });
  });
  after(async () => {
    await bouncer?.stop();
    await pg?.stop();
  });

  it("THEN the same refused ini leaves it half-configured: client TLS no longer required, max_client_conn at its default", async () => {
    const f = bouncer.files[0];
    assert.equal(await configValue(f.unixSocketDir, f.port, "client_tls_sslmode"), "require");
    assert.equal(
      await configValue(f.unixSocketDir, f.port, "max_client_conn"),
      String(one.pool.maxClientConn),
    );
    fs.writeFileSync(iniFile, refusedIni(fs.readFileSync(iniFile, "utf8")));
    for (const pid of bouncer.pids()) process.kill(pid, "SIGHUP");
    await sleep(1000);
    const tls = await configValue(f.unixSocketDir, f.port, "client_tls_sslmode");
    const maxClients = await configValue(f.unixSocketDir, f.port, "max_client_conn");
    console.log(`      after a plain SIGHUP: client_tls_sslmode ${tls}, max_client_conn ${maxClients}`);
    assert.equal(tls, "disable");
    assert.equal(maxClients, "100");
  });
});
