/**
 * `npm run bench:reload -- [--stack prod] [--clients 200] [--set key=value ...]`: the same change to a
 * running fleet (./fleet.ts, the stack's replicas and processes, its reload timings) made twice under load,
 * first as the program makes it (the ConfigMap updated in place: each pod's script reloads it, the canary
 * first, the others after the hold), then as a roll would make it (each replica replaced in turn, highest
 * ordinal first, as a StatefulSet's rolling update does). For each: the time from the swap until every process
 * serves the new value (`SHOW CONFIG`), and what the clients saw (closed connections, failed transactions,
 * refused logins). Prints a Markdown table for BENCHMARKS.md. The change: `pool.defaultPoolSize` one lower.
 */
import { Args, UsageError, runMain } from "../common";
import { sleep } from "../harness/proc";
import { type Fleet, fleetSettings, stackTimings, startFleet } from "./fleet";
import { type LoadCounts, configValue, countsSince, startLoad } from "./load";
import { VOLUMES } from "./render";

const USAGE = "usage: npm run bench:reload -- [--stack prod] [--clients 200] [--set section.field=value ...]";

interface Outcome {
  readonly how: string;
  /** Seconds from the change until the first replica's processes showed the new value. */
  readonly first: number;
  /** Seconds from the change until every process showed the new value. */
  readonly seconds: number;
  readonly counts: LoadCounts;
}

/** Every process's `default_pool_size`, or those of replica `ordinal`. */
async function poolSizes(fleet: Fleet, ordinal?: number): Promise<string[]> {
  const out: string[] = [];
  for (const r of fleet.replicas().filter((x) => ordinal === undefined || x.ordinal === ordinal)) {
    for (const p of r.processes) out.push(await configValue(p.socketDir, r.port, "default_pool_size"));
  }
  return out;
}

/** Waits (bounded) until every process (of replica `ordinal`) serves `want`; the seconds since `from`. */
async function untilServed(
  fleet: Fleet,
  want: string,
  from: number,
  maxMs: number,
  ordinal?: number,
): Promise<number> {
  for (;;) {
    if ((await poolSizes(fleet, ordinal)).every((v) => v === want)) return (Date.now() - from) / 1000;
    if (Date.now() - from > maxMs) throw new Error(`not every process served ${want} within ${maxMs} ms`);
    await sleep(200);
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const a = new Args(argv);
  const stack = a.optional("stack") ?? "prod";
  const clients = Number(a.optional("clients") ?? "200");
  const sets = Object.fromEntries(
    a.all("set").map((s) => {
      if (!/^[A-Za-z][\w.]*=/.test(s)) throw new UsageError(`--set "${s}" is not section.field=value`);
      return [s.slice(0, s.indexOf("=")), s.slice(s.indexOf("=") + 1)];
    }),
  );
  a.done();
  if (!Number.isInteger(clients) || clients < 1) throw new UsageError(`--clients is "${clients}"`);
  const settings = fleetSettings(stack, sets);
  const w = settings.workload;
  // the stack's own timings: what a pod does in the cluster
  const timings = stackTimings(settings);
  const bound = (w.reloadCheckSeconds * 3 + w.canaryHoldSeconds + 30) * 1000;
  const fleet = await startFleet({ settings, timings, log: (l) => console.log(l) });
  const outcomes: Outcome[] = [];
  try {
    const load = await startLoad(fleet.conn, clients, { txSeconds: 0.05 });
    try {
      const size = settings.pool.defaultPoolSize;
      const specsAt = (n: number) =>
        fleet.specs({ settings: { ...settings, pool: { ...settings.pool, defaultPoolSize: n } } });
      // 1. the program's way: the ConfigMap's files swapped in place
      let before = load.counts();
      let t0 = Date.now();
      const reload = specsAt(size - 1);
      await fleet.updateMount(VOLUMES.config, (o) => reload[o].mounts[VOLUMES.config]);
      const canarySeconds = await untilServed(fleet, String(size - 1), t0, bound, 0);
      const reloadSeconds = await untilServed(fleet, String(size - 1), t0, bound);
      await sleep(2000);
      outcomes.push({
        how: "reload (the ConfigMap updated in place)",
        first: canarySeconds,
        seconds: reloadSeconds,
        counts: countsSince(load.counts(), before),
      });
      // 2. the same change as a roll: each replica replaced with the changed files, highest ordinal first
      before = load.counts();
      t0 = Date.now();
      const roll = specsAt(size - 2);
      const replicas = [...fleet.replicas()].reverse();
      let first = 0;
      for (const r of replicas) {
        await fleet.replace(r.ordinal, roll[r.ordinal].mounts);
        if (r === replicas[0]) first = (Date.now() - t0) / 1000;
      }
      const rollSeconds = await untilServed(fleet, String(size - 2), t0, bound * 4);
      await sleep(2000);
      outcomes.push({
        how: "roll (each replica replaced in turn)",
        first,
        seconds: rollSeconds,
        counts: countsSince(load.counts(), before),
      });
    } finally {
      await load.stop();
    }
  } finally {
    await fleet.stop();
  }
  console.log(
    `\n${w.replicas} replicas x ${w.processesPerPod} process(es), ${clients} clients in transactions, ` +
      `stack ${stack}: reloadCheckSeconds ${w.reloadCheckSeconds}, canaryHoldSeconds ${w.canaryHoldSeconds}, ` +
      `preStopDelaySeconds ${w.preStopDelaySeconds}, drainSeconds ${w.drainSeconds}\n`,
  );
  console.log(
    "| the change made by | the first replica serves it after | every process serves it after | " +
      "connections closed | transactions failed | logins refused |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const o of outcomes) {
    console.log(
      `| ${o.how} | ${o.first.toFixed(1)} s | ${o.seconds.toFixed(1)} s | ${o.counts.closedConnections} | ` +
        `${o.counts.failedTransactions.length} | ${o.counts.refusedLogins.length} |`,
    );
  }
  return 0;
}

if (require.main === module) runMain(USAGE, () => main(process.argv.slice(2)));
