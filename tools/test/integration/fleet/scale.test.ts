/**
 * Scaling the local fleet (tools/fleet/): a replica added starts with every peer in its `[peers]`, and the
 * others learn of it through the config mount, as the StatefulSet's shared ConfigMap tells them (the canary at
 * once, the others after the hold); a replica removed drains and leaves every `[peers]`.
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { type Fleet, alive, fleetSettings, startFleet } from "../../../fleet/fleet";
import { PgClient, adminCommand } from "../../../harness";
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

/**
 * Waits until every replica lists `want` (bounded), and returns what they list. Every 500 ms: each look is a
 * psql per replica, and the bound is seconds.
 */
async function untilPeers(fleet: Fleet, want: number[], maxMs: number): Promise<Record<string, number[]>> {
  const started = Date.now();
  for (;;) {
    const p = await peers(fleet);
    if (Object.values(p).every((ids) => ids.join() === want.join()) || Date.now() - started > maxMs) return p;
    await sleep(500);
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

  it("AND a replica whose drain begins between its script's drain check and readiness verdict stays unready", async () => {
    // The script's loop checks whether it drains, then reads `failed` and decides readiness; the INT's trap
    // runs once the command under way has finished. As a FIFO, `failed` holds the loop in that read until
    // the test writes it, after the INT: the trap runs there, and the loop's verdict comes after it.
    const r = fleet.replica(1);
    const p = r.processes[0];
    const client = await PgClient.connect({ ...fleet.conn, port: r.port }); // the drain lasts while it is on
    const failed = path.join(p.appliedDir, "failed");
    fs.rmSync(failed, { force: true });
    execFileSync("mkfifo", ["-m", "0644", failed]);
    let replaced: Promise<unknown> = Promise.resolve();
    try {
      await sleep(1500); // a tick (1 s): the loop is in the read
      replaced = fleet.replace(1);
      replaced.catch(() => undefined);
      // the preStop hook sleeps 1 s, then INT, which the shell takes at once and keeps for after the read
      while (r.signalledAt === undefined) await sleep(20);
      await sleep(200);
      assert.equal(r.ready(), true, "the loop was not held in its read (the INT's trap ran)");
      let fd: number;
      try {
        fd = fs.openSync(failed, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      } catch (e) {
        assert.fail(`the script's loop is not reading ${failed}: ${String(e)}`);
      }
      fs.writeSync(fd, "0\n");
      fs.closeSync(fd);
      const said = () =>
        fs
          .readFileSync(p.logFile, "utf8")
          .split("\n")
          .filter((l) => l.startsWith("pgbouncer-pod["));
      const drainBegan = () => said().findIndex((l) => l.endsWith(": not ready: draining"));
      // the read returns, then the trap runs: until then the pod is ready, as it was (a busy node takes a while)
      const script = p.pid();
      assert.ok(script !== undefined, "pgbouncer-1's script runs");
      const trapBy = Date.now() + 5000;
      while (drainBegan() < 0 && Date.now() < trapBy) await sleep(20);
      assert.ok(
        drainBegan() >= 0,
        `the INT's trap did not run once the read returned:\n${said().join("\n")}`,
      );
      // until the drain ends (drainSeconds; the client stays), while the old script runs: the new pod, which
      // starts once it has exited, writes its readiness at the same path
      const until = Date.now() + TIMINGS.drainSeconds * 1000;
      let readyAgain = false;
      while (Date.now() < until && alive(script)) {
        if (r.ready() && alive(script)) readyAgain = true;
        await sleep(20);
      }
      const after = said().slice(drainBegan() + 1);
      assert.equal(readyAgain, false, `draining, it turned ready again:\n${said().join("\n")}`);
      assert.ok(!after.some((l) => l.endsWith(": ready")), `draining, it said ready:\n${said().join("\n")}`);
    } finally {
      client.close();
      await replaced;
    }
    assert.equal(fleet.replica(1).ready(), true);
  });

  it("AND a replica whose PgBouncer takes the drain's TERM late (a busy node) still gets its relay on the pod's port", async () => {
    // prod runs one process a pod: no so_reuseport, so the relay can bind the port only once PgBouncer has
    // closed its listener. Under load, PgBouncer handled the TERM after the relay had failed to bind (a cancel
    // test timed out waiting for the relay); here PgBouncer is held stopped past the script's INT.
    const r = fleet.replica(1);
    const p = r.processes[0];
    const bouncer = p.pgbouncerPid();
    assert.ok(bouncer !== undefined, "pgbouncer-1 runs a PgBouncer");
    // a client on the pod with a query running, so that the drain lasts (it ends with the last client)
    const client = await PgClient.connect({ ...fleet.conn, port: r.port });
    const query = client.query("SELECT pg_sleep(3)").catch((e: unknown) => e);
    process.kill(bouncer, "SIGSTOP");
    let replaced: Promise<unknown> = Promise.resolve();
    try {
      replaced = fleet.replace(1);
      replaced.catch(() => undefined);
      // the preStop hook sleeps 1 s, then INT: the script's TERM waits while PgBouncer is stopped, and the
      // script's first second of polling for the port passes (the old script started its relay at once)
      while (r.signalledAt === undefined) await sleep(20);
      await sleep(1500);
      assert.equal(p.relayListening(), false, "a relay listens on the port PgBouncer still holds");
      // the script waits for the port: it starts no relay that cannot bind it
      const early = p.relayLog();
      assert.doesNotMatch(early, /cannot listen|failed to listen/, `the relay started too early: ${early}`);
    } finally {
      process.kill(bouncer, "SIGCONT");
    }
    const started = Date.now();
    while (!p.relayListening() && Date.now() - started < 5000) await sleep(50);
    assert.ok(p.relayListening(), `no relay listens 5 s after PgBouncer was resumed: ${p.relayLog()}`);
    // The relay held stopped too: it cannot take a TERM. Once PgBouncer has gone, the script must end it
    // before it ends itself, or it keeps the port from the pod's next PgBouncer (one network here).
    const relay = p.relayPid();
    const script = p.pid();
    assert.ok(relay !== undefined && script !== undefined, "the relay is the script's child");
    process.kill(relay, "SIGSTOP");
    await query;
    client.close();
    while (alive(script)) await sleep(10);
    const relayLeft = alive(relay);
    await replaced;
    assert.equal(relayLeft, false, `the relay (pid ${relay}) outlived its script`);
    assert.equal(fleet.replica(1).ready(), true);
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
