/**
 * The fleet's load clients (tools/fleet/load.ts), against a local PostgreSQL: paced clients hold their
 * connections and run one transaction per pause, also after a failed one, and stop() does not wait out a pause.
 * The fault run's workers (tools/load/fault.ts) with a pause: each waits it out after every transaction.
 */
import * as assert from "node:assert/strict";
import { type LoadCounts, startLoad } from "../../fleet/load";
import { runWorkers } from "../../load/fault";
import { type PostgresHandle, startPostgres } from "../../harness";
import { sleep } from "../../harness/proc";

const CLIENTS = 4;
const SHAPE = { txSeconds: 0.01, pauseSeconds: 1 };
const RUN_MS = 2500;
/** Each client's transactions in the run at most: one at its start (spread over one pause), then one a pause. */
const MOST = CLIENTS * (Math.floor(RUN_MS / 1000 / SHAPE.pauseSeconds) + 1);

describe("GIVEN the fleet's load clients with a pause after each transaction", function () {
  this.timeout(60_000);
  let pg: PostgresHandle;

  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  /** Runs the load for RUN_MS; the counts, the connections held meanwhile, and how long stop() took. */
  async function run(database?: string): Promise<{ counts: LoadCounts; held: number; stopMs: number }> {
    const load = await startLoad(pg.conn(database), CLIENTS, SHAPE);
    await sleep(RUN_MS);
    const held = Number(
      (await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fleet-load'")).trim(),
    );
    const at = Date.now();
    const counts = await load.stop();
    return { counts, held, stopMs: Date.now() - at };
  }

  it(`THEN ${CLIENTS} clients hold their connections, run one transaction a pause each (not back to back), and stop() cuts a pause short`, async () => {
    const { counts, held, stopMs } = await run();
    console.log(`      ${counts.transactions} transactions in ${RUN_MS} ms, stopped in ${stopMs} ms`);
    assert.equal(held, CLIENTS);
    assert.deepEqual(counts.failedTransactions, []);
    assert.ok(
      counts.transactions >= CLIENTS && counts.transactions <= MOST,
      `${counts.transactions} transactions`,
    );
    assert.ok(stopMs < SHAPE.pauseSeconds * 500, `stop() took ${stopMs} ms`);
  });

  it("THEN a client whose transactions fail pauses before the next one too (a failing backend is not a hot loop)", async () => {
    // every transaction fails in PostgreSQL (57014), the connection stays open; in a database of its own, so
    // that the test's own queries (database postgres) are not cut short on a loaded machine
    await pg.psql("CREATE DATABASE failing");
    await pg.psql("ALTER DATABASE failing SET statement_timeout = '5ms'");
    const { counts } = await run("failing");
    console.log(`      ${counts.failedTransactions.length} failed transactions in ${RUN_MS} ms`);
    assert.equal(counts.transactions, 0);
    assert.equal(counts.closedConnections, 0);
    assert.ok(counts.failedTransactions.length >= CLIENTS, `${counts.failedTransactions.length} failed`);
    assert.ok(counts.failedTransactions.length <= MOST, `${counts.failedTransactions.length} failed`);
    assert.match(counts.failedTransactions[0], /statement timeout/);
  });

  it("THEN the fault run's workers with pauseMs wait it out after every transaction and stop at endAt", async () => {
    const pauseMs = 200;
    const t0 = Date.now();
    const attempts = await runWorkers(pg.conn(), { workers: 2, endAt: t0 + 1500, t0, accounts: 0, pauseMs });
    const ended = Date.now() - t0;
    console.log(`      ${attempts.length} attempts of 2 workers in ${ended} ms, ${pauseMs} ms apart`);
    assert.ok(attempts.length >= 2 && attempts.every((a) => a.ok), JSON.stringify(attempts));
    for (const w of [0, 1]) {
      const mine = attempts.filter((a) => a.worker === w);
      for (let i = 1; i < mine.length; i++) {
        assert.ok(mine[i].start - mine[i - 1].end >= pauseMs - 5, `worker ${w}: ${JSON.stringify(mine)}`);
      }
    }
    // back to back, each 1 to 10 ms of pg_sleep: hundreds; paused, one per 200 ms at most
    assert.ok(attempts.length <= 2 * Math.ceil(1500 / pauseMs), `${attempts.length} attempts`);
    assert.ok(ended < 1500 + 1000, `ran ${ended} ms`);
  });
});
