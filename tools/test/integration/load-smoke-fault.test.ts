import * as assert from "node:assert/strict";
import { type FaultRun, formatFault, minimumSeconds, runFault } from "../../load/fault";
import { type Fleet, fleetSettings, stackTimings, startFleet } from "../../fleet/fleet";

/**
 * What the product promises when a pod goes away (a rolling update, an eviction), in production's order: the
 * pod leaves the endpoints, its preStop hook sleeps, INT starts the pod script's drain. On the local fleet with
 * prod's settings, but a preStop of 1 s and a drain of 3 s so that it takes seconds (`npm run fault` runs the
 * stack's own). The clients keep their connections, as a backend's pool does, and each waits 50 ms after a
 * transaction, as a backend does between requests (`npm run fault` runs them back to back): about 25 a second
 * each instead of 210, and 4.6 CPU-s for this describe alone on 2 cores instead of 8.5 (2026-12-07).
 */
describe("load smoke: a fleet replica replaced under load, in production's order", function () {
  this.timeout(120_000);
  const settings = fleetSettings("prod", {
    "pgbouncer.preStopDelaySeconds": "1",
    "pgbouncer.drainSeconds": "3",
  });
  let fleet: Fleet | undefined;
  let run: FaultRun;

  before(async () => {
    fleet = await startFleet({ settings, timings: stackTimings(settings) });
    const w = settings.workload;
    run = await runFault(fleet, "pod-replacement", {
      workers: 8,
      atSeconds: 1,
      seconds: minimumSeconds(1, w.preStopDelaySeconds, w.drainSeconds),
      accounts: 0,
      pauseMs: 50,
    });
    console.log(formatFault(run).replace(/^/gm, "      "));
  });
  after(async () => {
    await fleet?.stop();
  });

  it("THEN no transaction in flight fails, no login is refused, and new transactions succeed after the new pod is back", () => {
    const k = run.analysis.byKind;
    assert.equal(k["in-flight"].count, 0, formatFault(run));
    assert.equal(k["refused-login"].count, 0, formatFault(run));
    assert.equal(run.analysis.endedBeforeUp, false, "the run ended before the new pod was ready");
    assert.ok(run.analysis.firstSuccessAfterUpMs !== undefined, formatFault(run));
  });

  it("THEN the only errors are the replaced pod's connections closed at the end of its drain, one per client still on it", () => {
    const k = run.analysis.byKind;
    for (const kind of ["outage", "after-recovery", "before-fault"] as const) {
      assert.equal(k[kind].count, 0, `${kind}: ${formatFault(run)}`);
    }
    assert.equal(k["drain-closed"].count, run.analysis.onReplacedAtFault, formatFault(run));
    assert.equal(run.analysis.failures, k["drain-closed"].count);
  });
});
