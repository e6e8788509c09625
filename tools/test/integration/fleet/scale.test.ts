/**
 * Scaling the local fleet (tools/fleet/): a replica added starts with every peer in its `[peers]`, and the
 * others learn of it through the config mount, as the StatefulSet's shared ConfigMap tells them (the canary at
 * once, the others after the hold); a replica removed drains and leaves every `[peers]`.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { type Fleet, fleetSettings, startFleet } from "../../../fleet/fleet";
import { adminCommand } from "../../../harness";
import { sleep } from "../../../harness/proc";

const TIMINGS = { checkSeconds: 1, canaryHoldSeconds: 2, failureSeconds: 3, drainSeconds: 3 };

/** The peer ids each replica's process 1 lists, by replica name. */
async function peers(fleet: Fleet): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const r of fleet.replicas()) {
    const text = await adminCommand({ unixSocketDir: r.processes[0].socketDir, port: r.port }, "SHOW PEERS");
    out[r.name] = text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => Number(l.split("|")[0]))
      .sort((a, b) => a - b);
  }
  return out;
}

/** Waits until every replica lists `want` (bounded), and returns what they list. */
async function untilPeers(fleet: Fleet, want: number[], maxMs: number): Promise<Record<string, number[]>> {
  const started = Date.now();
  for (;;) {
    const p = await peers(fleet);
    if (Object.values(p).every((ids) => ids.join() === want.join()) || Date.now() - started > maxMs) return p;
    await sleep(200);
  }
}

describe("GIVEN the local fleet (2 replicas) scaled to 3 and back", function () {
  this.timeout(120_000);
  let fleet: Fleet;

  before(async () => {
    fleet = await startFleet({
      settings: fleetSettings("prod", { "pgbouncer.replicas": "2" }),
      timings: TIMINGS,
      preStopDelaySeconds: 1,
      terminationGracePeriodSeconds: 20,
    });
  });
  after(async () => {
    await fleet?.stop();
  });

  it("THEN pgbouncer-2 starts ready, and every replica's [peers] lists all three", async () => {
    assert.deepEqual(await peers(fleet), { "pgbouncer-0": [1, 2], "pgbouncer-1": [1, 2] });
    await fleet.scale(3);
    assert.equal(fleet.replica(2).ready(), true);
    const got = await untilPeers(
      fleet,
      [1, 2, 3],
      (TIMINGS.canaryHoldSeconds + TIMINGS.checkSeconds + 8) * 1000,
    );
    assert.deepEqual(got, { "pgbouncer-0": [1, 2, 3], "pgbouncer-1": [1, 2, 3], "pgbouncer-2": [1, 2, 3] });
  });

  it("AND scaled back to 2, pgbouncer-2 is gone and no [peers] lists it", async () => {
    await fleet.scale(2);
    assert.deepEqual(
      fleet.replicas().map((r) => r.name),
      ["pgbouncer-0", "pgbouncer-1"],
    );
    const got = await untilPeers(
      fleet,
      [1, 2],
      (TIMINGS.canaryHoldSeconds + TIMINGS.checkSeconds + 8) * 1000,
    );
    assert.deepEqual(got, { "pgbouncer-0": [1, 2], "pgbouncer-1": [1, 2] });
  });

  it("AND stopped, it leaves no process of its containers, not even one outside their tree (as a relay was)", async () => {
    // a container's environment (its PATH names the fleet's own folder), with a parent outside the fleet
    const stray = spawn("/bin/sleep", ["300"], {
      env: { PATH: path.join(fleet.dir, "bin") },
      detached: true,
      stdio: "ignore",
    });
    stray.unref();
    const gone = new Promise<void>((resolve) => stray.once("exit", () => resolve()));
    await fleet.stop();
    await Promise.race([gone, sleep(5000).then(() => assert.fail(`PID ${stray.pid} outlived its fleet`))]);
  });
});
