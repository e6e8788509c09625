/**
 * Cancel requests through the local fleet (tools/fleet/), TLS on both legs, from a real driver (psycopg 3,
 * libpq inside) and the harness's own client: for 2 and 3 replicas x 1 and 2 processes, every cancel of a
 * running query arrives, through a balancer that hands each new connection (a cancel request is one) to a
 * random ready replica; also while a replica is replaced as a rolling update replaces it, with the cancels of
 * the queries on the draining replica among them. The negative control runs the same on today's rendering
 * (no peers across replicas) and must lose cancels.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { type Fleet, fleetSettings, startFleet } from "../../../fleet/fleet";
import { sleep } from "../../../harness/proc";
import { type CancelRound, cancelRound, totals } from "../../support/fleet-cancels";

/**
 * A query whose cancel is lost runs this long; the cancels go once every query runs in PostgreSQL (at most
 * half of it after the first was sent) and 300 ms more.
 */
const SLEEP_SECONDS = 6;
const CANCEL_AFTER_MS = 300;
/** A cancelled query ends this soon after its cancel: "well before it would have finished". */
const CANCEL_BOUND_SECONDS = 2;
/**
 * Per round, each driver's clients: 10 + 10 = 20 running queries, at most the per-process server cap below,
 * so that a query is never queued behind the cap (its cancel would be dropped, see fleet-cancels.ts).
 */
const PER_DRIVER = 10;
const STEADY_ROUNDS = 2;

/** prod, with a cap that keeps (replicas + 1) x processes x cap within PostgreSQL's budget at 3 x 2. */
function cellSettings(replicas: number, processes: number) {
  return fleetSettings("prod", {
    "pgbouncer.replicas": String(replicas),
    "pgbouncer.processesPerPod": String(processes),
    "pool.maxDbConnections": "20",
    "pool.defaultPoolSize": "20",
  });
}

interface Cell {
  readonly replicas: number;
  readonly processes: number;
  steady: CancelRound[];
  replacing?: CancelRound;
  /** Of the replacement round, the queries on the draining replica: their cancels went through its relay. */
  onDraining?: number;
  /** PgBouncer's log lines of cancels it dropped: a forwarded one that waited out cancel_wait_timeout. */
  dropped: string[];
  error?: Error;
}

/** The fleet's PgBouncer log lines of dropped cancels (read before the fleet stops and removes them). */
function droppedCancels(fleet: Fleet): string[] {
  return fleet
    .replicas()
    .flatMap((r) => r.processes.map((p) => fs.readFileSync(p.logFile, "utf8")))
    .flatMap((text) => text.split("\n"))
    .filter((l) => /cancel_wait_timeout|failed cancel request/.test(l));
}

/** What a lost cancel's assertion says: the log lines that show where it went. */
function lossNote(cell: Cell): string {
  return (
    `PgBouncer dropped ${cell.dropped.length} cancels (1.25.2 opens one connection at a time to a TCP peer ` +
    `and serves a peer's queued cancels only when the next one arrives, see docs/testing.md):\n` +
    cell.dropped.slice(0, 6).join("\n")
  );
}

/** Steady rounds, then one while replica 0 is replaced: its queries' cancels are sent during its drain. */
async function runCell(cell: Cell): Promise<void> {
  let fleet: Fleet | undefined;
  try {
    fleet = await startFleet({
      settings: cellSettings(cell.replicas, cell.processes),
      preStopDelaySeconds: 1,
      terminationGracePeriodSeconds: 30,
      timings: { checkSeconds: 1, drainSeconds: 20 },
    });
    const f = fleet;
    for (let i = 0; i < STEADY_ROUNDS; i++) {
      cell.steady.push(
        await cancelRound(f, {
          psycopg: PER_DRIVER,
          harness: PER_DRIVER,
          sleepSeconds: SLEEP_SECONDS,
          cancelAfterMs: CANCEL_AFTER_MS,
        }),
      );
    }
    let replaced: Promise<unknown> = Promise.resolve();
    const before = f.replica(0).connections;
    try {
      cell.replacing = await cancelRound(f, {
        psycopg: PER_DRIVER,
        harness: PER_DRIVER,
        // long enough to span the preStop sleep and the start of the drain
        sleepSeconds: SLEEP_SECONDS + 4,
        cancelAfterMs: CANCEL_AFTER_MS,
        beforeCancel: async () => {
          cell.onDraining = f.replica(0).connections - before;
          replaced = f.replace(0);
          replaced.catch(() => undefined);
          // the drain has begun once the script took the replica's readiness away; then its relay starts
          const started = Date.now();
          while (f.replica(0).ready() && Date.now() - started < 10_000) await sleep(20);
          await sleep(300);
        },
      });
    } finally {
      await replaced.catch(() => undefined);
    }
    await replaced;
  } catch (e) {
    cell.error = e instanceof Error ? e : new Error(String(e));
  } finally {
    if (fleet) cell.dropped.push(...droppedCancels(fleet));
    await fleet?.stop();
  }
}

describe("GIVEN the local fleet (StatefulSet peers, TLS on both legs) and cancels through its balancer", function () {
  this.timeout(180_000);
  const cells: Cell[] = [
    { replicas: 2, processes: 1, steady: [], dropped: [] },
    { replicas: 2, processes: 2, steady: [], dropped: [] },
    { replicas: 3, processes: 1, steady: [], dropped: [] },
    { replicas: 3, processes: 2, steady: [], dropped: [] },
  ];
  const control: Cell = { replicas: 2, processes: 1, steady: [], dropped: [] };
  let controlRound: CancelRound | undefined;

  before(async () => {
    const started = Date.now();
    // two fleets at a time: more starve each other of the 2 cores, and the bounds above are about PgBouncer
    await Promise.all([
      (async () => {
        for (const cell of cells.slice(0, 2)) await runCell(cell);
      })(),
      (async () => {
        for (const cell of cells.slice(2)) await runCell(cell);
      })(),
    ]);
    await Promise.all([
      (async () => {
        const f = await startFleet({
          settings: cellSettings(2, 1),
          peers: "pod",
          timings: { checkSeconds: 1 },
        });
        try {
          controlRound = await cancelRound(f, {
            psycopg: PER_DRIVER,
            harness: PER_DRIVER,
            sleepSeconds: SLEEP_SECONDS,
            cancelAfterMs: CANCEL_AFTER_MS,
          });
        } catch (e) {
          control.error = e instanceof Error ? e : new Error(String(e));
        } finally {
          await f.stop();
        }
      })(),
    ]);
    console.log(
      `      fleet cancels: ${((Date.now() - started) / 1000).toFixed(1)} s for every cell at once`,
    );
  });

  for (const cell of cells) {
    const name = `${cell.replicas} replicas x ${cell.processes} processes`;
    it(`THEN with ${name}, every cancel arrives, each query ending within ${CANCEL_BOUND_SECONDS} s of it`, () => {
      if (cell.error) throw cell.error;
      const t = totals(cell.steady);
      console.log(
        `      ${name}: ${t.cancelled}/${t.sent} cancels arrived (psycopg and harness), lost ${t.lost}, ` +
          `slowest ${t.slowest.toFixed(2)} s after its cancel`,
      );
      assert.deepEqual(t.other, [], lossNote(cell));
      assert.equal(t.sent, STEADY_ROUNDS * 2 * PER_DRIVER);
      assert.equal(t.lost, 0, lossNote(cell));
      assert.equal(t.cancelled, t.sent);
      assert.ok(t.slowest < CANCEL_BOUND_SECONDS, `slowest ${t.slowest} s`);
    });

    it(`AND with ${name}, while replica 0 is replaced, every cancel arrives, those of its draining queries too`, () => {
      if (cell.error) throw cell.error;
      const r = cell.replacing;
      assert.ok(r);
      console.log(
        `      ${name}, replacing pgbouncer-0: ${r.cancelled}/${r.sent} arrived, lost ${r.lost}, ` +
          `${cell.onDraining} of the queries on the draining replica, slowest ${r.slowest.toFixed(2)} s`,
      );
      assert.deepEqual(r.other, [], lossNote(cell));
      assert.equal(r.lost, 0, lossNote(cell));
      assert.equal(r.cancelled, r.sent);
      assert.ok((cell.onDraining ?? 0) > 0, "no query ran on the replica being replaced");
      assert.ok(r.slowest < CANCEL_BOUND_SECONDS, `slowest ${r.slowest} s`);
    });
  }

  it("AND on today's rendering (no peers across replicas) the same cancels are lost: the test's power", () => {
    if (control.error) throw control.error;
    const r = controlRound;
    assert.ok(r);
    console.log(`      negative control, 2 replicas without cross-replica peers: lost ${r.lost}/${r.sent}`);
    assert.deepEqual(r.other, []);
    assert.ok(r.lost > 0, `lost ${r.lost} of ${r.sent}`);
  });

  it("AND the real driver speaks libpq 17 (cancel_safe: PQcancelCreate)", () => {
    const libpq = cells.flatMap((c) => c.steady).find((r) => r.libpq > 0)?.libpq ?? 0;
    assert.ok(libpq >= 170000, `libpq ${libpq}`);
  });
});
