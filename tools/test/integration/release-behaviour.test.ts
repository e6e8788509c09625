/**
 * What the product relies on from the PgBouncer release it deploys (1.25.2), run for real from the rendered
 * ini with nothing dropped: protocol-level prepared statements in transaction mode, and cancel requests
 * forwarded between the processes of a multi-process pod. Each behaviour has a negative run beside it, so
 * the test shows it can fail. The last block runs Debian's 1.18, the one place an older release is meant:
 * the version gating.
 */
import * as assert from "node:assert/strict";
import {
  NO_RELOAD_PARAMETERS,
  PGBOUNCER_RELEASE,
  noReloadHash,
  renderIni,
  podIniInput,
} from "../../../components/pgbouncer";
import type { StackSettings } from "../../../stacks/settings";
import {
  DEBIAN_PGBOUNCER_BIN,
  type PooledStack,
  type PostgresHandle,
  authFileText,
  binaryVersion,
  harnessIni,
  localRewrites,
  psqlRows,
  scramSecret,
  startPgBouncer,
  startPooledStack,
  startPostgres,
} from "../../harness";
import { variantSettings } from "../../load/benchmark";
import { probeCancels } from "../../load/cancel";
import { type PgbenchResult, initPgbench, runPgbench } from "../../load/pgbench";
import { PREPARED_RUN } from "../support/prepared-run";
import { loadStackSettings } from "../../../stacks/settings";

const prod = loadStackSettings("prod");

/** Client- and server-side Parse counts of the stack's database, from process 0's SHOW STATS. */
async function parses(stack: PooledStack): Promise<{ client: number; server: number }> {
  const rows = await psqlRows(stack.console, "SHOW STATS");
  const row = rows.find((r) => r.database === stack.settings.database.name);
  assert.ok(row, `no SHOW STATS row for ${stack.settings.database.name}`);
  return { client: Number(row.total_client_parse_count), server: Number(row.total_server_parse_count) };
}

describe(`PgBouncer ${PGBOUNCER_RELEASE.version} from the rendered ini: the behaviours the product relies on`, function () {
  this.timeout(120_000);
  let pg: PostgresHandle;

  before(async () => {
    pg = await startPostgres({ maxConnections: prod.database.maxConnections });
    // the role and database through the harness, then pgbench's tables
    const probe = await startPooledStack(prod, { postgres: pg, appPassword: "release-test-1" });
    try {
      await initPgbench(probe.direct, 1);
    } finally {
      await probe.stop();
    }
  });
  after(async () => {
    await pg?.stop();
  });

  describe("GIVEN the prod ini running", () => {
    it("THEN the settings SHOW CONFIG marks not changeable are exactly the no-reload table the pod template hashes", async () => {
      const stack = await startPooledStack(prod, { postgres: pg, appPassword: "release-test-1" });
      try {
        const rows = await psqlRows(stack.console, "SHOW CONFIG");
        assert.ok(rows.length > 50, `${rows.length} rows`);
        const fixed = rows.filter((r) => r.changeable === "no").map((r) => r.key);
        assert.deepEqual([...fixed].sort(), [...NO_RELOAD_PARAMETERS].sort());
      } finally {
        await stack.stop();
      }
      // and the hash moves with each of them, and with none of the reloadable settings the stack renders
      const ini = renderIni(podIniInput(prod, { type: prod.credentials.authType }, prod.namespace));
      // the ini ends inside [pgbouncer], so an appended line is the section's last word, as a script's are
      const withLine = (line: string) => `${ini}${line}\n`;
      for (const k of NO_RELOAD_PARAMETERS)
        assert.notEqual(noReloadHash(withLine(`${k} = x`)), noReloadHash(ini), k);
      for (const k of ["default_pool_size", "query_wait_timeout", "server_tls_sslmode", "auth_file"])
        assert.equal(noReloadHash(withLine(`${k} = x`)), noReloadHash(ini), k);
    });
  });

  describe("GIVEN pgbench -M prepared through the prod ini (transaction mode)", () => {
    const clients = PREPARED_RUN.clients;
    const run = async (settings: StackSettings, rate: number) => {
      const stack = await startPooledStack(settings, { postgres: pg, appPassword: "release-test-1" });
      try {
        const r = await runPgbench({ conn: stack.pooled, ...PREPARED_RUN, rate });
        return { r, parses: await parses(stack), ini: stack.ini };
      } finally {
        await stack.stop();
      }
    };
    let on: { r: PgbenchResult; parses: { client: number; server: number }; ini: string };

    before(async () => {
      on = await run(prod, PREPARED_RUN.rate);
    });

    it(`THEN with max_prepared_statements ${prod.pool.maxPreparedStatements}: 0 failed, exit 0`, () => {
      assert.match(on.ini, new RegExp(`^max_prepared_statements = ${prod.pool.maxPreparedStatements}$`, "m"));
      assert.equal(on.r.exitCode, 0, on.r.stderr);
      assert.equal(on.r.failed, 0);
      assert.equal(on.r.abortedClients, 0);
      assert.ok(on.r.transactions > 0);
      assert.equal(on.r.ok, true);
    });

    it("THEN PgBouncer prepared on the servers fewer statements than the clients prepared", () => {
      // every client prepares pgbench's statement once; PgBouncer prepares it once per server connection
      assert.ok(on.parses.client >= clients, JSON.stringify(on.parses));
      assert.ok(on.parses.server > 0, JSON.stringify(on.parses));
      assert.ok(on.parses.server < on.parses.client, JSON.stringify(on.parses));
      assert.ok(on.parses.server <= prod.pool.maxDbConnections, JSON.stringify(on.parses));
    });

    it("AND with maxPreparedStatements 0 the same run fails: the statement is missing on the server", async () => {
      // flat out: its clients end at their first error
      const off = await run({ ...prod, pool: { ...prod.pool, maxPreparedStatements: 0 } }, 0);
      assert.match(off.ini, /^max_prepared_statements = 0$/m);
      assert.notEqual(off.r.exitCode, 0);
      assert.equal(off.r.ok, false);
      assert.match(off.r.stderr, /prepared statement "P_\d+" does not exist/);
    });
  });

  describe("GIVEN two processes from a processesPerPod: 2 render (so_reuseport, peer_id, [peers])", () => {
    const two = variantSettings(prod, { cap: 16, processes: 2 });
    const clients = 16;
    let stack: PooledStack;

    before(async () => {
      stack = await startPooledStack(two, { postgres: pg, appPassword: "release-test-1" });
    });
    after(async () => {
      await stack?.stop();
    });

    it("THEN the ini of each process keeps its peering", () => {
      assert.match(stack.ini, /^peer_id = 1$/m);
      assert.match(stack.ini, /^\[peers\]$/m);
      assert.equal(stack.pgbouncer.pids().length, 2);
    });

    it("THEN every cancel is delivered, over both processes, and those sent to the other process via the peer", async () => {
      const probe = await probeCancels(stack, clients, 10);
      assert.equal(probe.spread.length, 2);
      assert.equal(probe.spread[0] + probe.spread[1], clients);
      assert.ok(
        probe.spread.every((n) => n > 0),
        `spread ${probe.spread.join("/")}`,
      );
      assert.deepEqual(probe.other, []);
      assert.deepEqual({ cancelled: probe.cancelled, lost: probe.lost }, { cancelled: clients, lost: 0 });
      assert.equal(probe.sentToPeer, clients / 2);
      assert.equal(probe.deliveredViaPeer, probe.sentToPeer);
    });

    it("AND the same processes with peering taken out of their ini lose the cancels sent to the other process", async () => {
      const stripped = await startPgBouncer({
        authFile: authFileText([
          // The password, as the stacks' auth file holds it (authFileSecret: password). With PostgreSQL's verifier
          // PgBouncer logs in to PostgreSQL only with the keys a client's SCRAM login left, the mode
          // components/credentials/README.md warns against; one full run in 14 here lost a login at the
          // connects below to "server login failed: wrong password type" (PgBouncer's kill_pool_logins).
          { user: stack.pooled.user, secret: stack.pooled.password ?? "" },
          { user: two.exporter.statsUser, secret: scramSecret("stats-release-1") },
        ]),
        processes: 2,
        ini: (f) => withoutPeering(harnessIni(two, { type: two.credentials.authType }, localRewrites(f, pg))),
      });
      try {
        const noPeers: PooledStack = {
          ...stack,
          pgbouncer: stripped,
          pooled: { ...stack.pooled, port: stripped.port },
          console: { ...stack.console, port: stripped.port, password: "stats-release-1" },
        };
        const probe = await probeCancels(noPeers, clients, 2);
        assert.equal(probe.sentToPeer, clients / 2);
        assert.equal(probe.deliveredViaPeer, 0, JSON.stringify(probe));
        assert.ok(probe.lost >= probe.sentToPeer, JSON.stringify(probe));
      } finally {
        await stripped.stop();
      }
    });
  });

  describe("GIVEN Debian's PgBouncer 1.18 (an older release: the version gating)", () => {
    const auth = authFileText([{ user: prod.exporter.statsUser, secret: scramSecret("x") }]);
    const older: StackSettings = {
      ...prod,
      workload: { ...prod.workload, version: "1.18.0" },
      pool: { ...prod.pool, maxPreparedStatements: 0 },
    };

    before(function () {
      if (binaryVersion(DEBIAN_PGBOUNCER_BIN) !== "1.18.0") this.skip();
    });

    it("THEN the ini rendered for 1.18 starts on it", async () => {
      const b = await startPgBouncer({
        bin: DEBIAN_PGBOUNCER_BIN,
        authFile: auth,
        ini: (f) => harnessIni(older, { type: older.credentials.authType }, localRewrites(f, pg)),
      });
      await b.stop();
    });

    it("AND the same ini with the prod release's max_prepared_statements is refused by 1.18 at start", async () => {
      await assert.rejects(
        startPgBouncer({
          bin: DEBIAN_PGBOUNCER_BIN,
          authFile: auth,
          ini: (f) => harnessIni(prod, { type: prod.credentials.authType }, localRewrites(f, pg)),
        }),
        /exited at start[\s\S]*max_prepared_statements/,
      );
    });
  });
});

/** The ini without its [peers] section and its peer_id: the processes then know only their own keys. */
function withoutPeering(ini: string): string {
  let inPeers = false;
  return ini
    .split("\n")
    .filter((line) => {
      if (/^\[\w+\]$/.test(line)) inPeers = line === "[peers]";
      return !inPeers && !/^peer_id = \d+$/.test(line);
    })
    .join("\n");
}
