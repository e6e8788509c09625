/**
 * The scenarios of the fleet's failure tests (tools/test/integration/fleet/failures-*.test.ts), each on a
 * local fleet (tools/fleet/) of its own with clients running transactions through its balancer, counting every
 * refused login, failed transaction, closed connection and lost cancel. `server_lifetime` is 2 s here, so
 * that every server connection logs in again every 2 s under the load: a file that reached the serving
 * PgBouncer would show within 2 s, inside watches of 9 s and more. (At 1 s, those logins took 3.3 of the
 * three files' 21.7 CPU-s: `npx mocha` on each alone, busy CPU from /proc/stat.) One file per group, so that
 * npm test's parallel workers run them side by side.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { type Fleet, fleetSettings, startFleet } from "../../fleet/fleet";
import { AUTH_FILE, TLS_FILES, VOLUMES } from "../../fleet/render";
import { PgClient } from "../../harness/pgwire";
import { sleep } from "../../harness/proc";
import { makeTestCa } from "../../harness/tls";
import { type CancelRound, cancelRound } from "./fleet-cancels";
import { type Load, type LoadCounts, configValue, countsSince, startLoad } from "../../fleet/load";

export const TIMINGS = { checkSeconds: 1, canaryHoldSeconds: 10, failureSeconds: 3, drainSeconds: 4 };
export const SLACK_SECONDS = 3;
export const CLIENTS = 20;
/** Each client's transaction, then its pause: 40 transactions a second per fleet, on 2 cores shared with npm test. */
export const LOAD = { txSeconds: 0.1, pauseSeconds: 0.4 };

export const settings = fleetSettings("prod", {
  "pgbouncer.replicas": "2",
  "pool.maxDbConnections": "20",
  "pool.defaultPoolSize": "20",
  "pool.minPoolSize": "5",
  "pool.serverLifetimeSeconds": "2",
});

export function report(label: string, c: LoadCounts): string {
  const kinds = [...new Set([...c.failedTransactions, ...c.refusedLogins])].slice(0, 3).join(" | ");
  const line =
    `${label}: ${c.transactions} transactions, ${c.failedTransactions.length} failed, ` +
    `${c.closedConnections} connections closed, ${c.refusedLogins.length} logins refused${kinds ? ` (${kinds})` : ""}`;
  console.log(`      ${line}`);
  return line;
}

/** Logins through the balancer, one after the other, each running a query: how many succeed. */
export async function freshLogins(fleet: Fleet, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      const c = await PgClient.connect(fleet.conn, { timeoutMs: 10_000 });
      await c.query("SELECT 1");
      c.close();
      ok++;
    } catch {
      // counted by what is missing
    }
  }
  return ok;
}

export interface World {
  readonly fleet: Fleet;
  readonly load: Load;
}

/** A fleet of its own and its clients for one scenario; stopped whatever happens. */
export async function withWorld<T>(fn: (w: World) => Promise<T>): Promise<T> {
  const fleet = await startFleet({
    settings,
    timings: TIMINGS,
    preStopDelaySeconds: 1,
    terminationGracePeriodSeconds: 30,
  });
  let load: Load | undefined;
  try {
    load = await startLoad(fleet.conn, CLIENTS, LOAD);
    return await fn({ fleet, load });
  } finally {
    await load?.stop();
    await fleet.stop();
  }
}

export interface Breaking {
  /** Seconds from the swap to the canary's unreadiness. */
  readonly unreadySeconds?: number;
  readonly otherUnready: boolean;
  readonly served: number;
  readonly log0: string;
  readonly log1: string;
  /** What the clients saw from the swap until the good files were back. */
  readonly clients: LoadCounts;
  readonly readyAgain: boolean;
}

/**
 * Swaps one volume's files, watches the canary (which checks them at once) turn unready and the other replica
 * hold them back past the hold, then restores the good files.
 */
export async function breakingChange(
  { fleet, load }: World,
  label: string,
  volume: string,
  files: Record<string, string>,
): Promise<Breaking> {
  const good = fleet.specs()[0].mounts[volume];
  const before = load.counts();
  const swaps = await fleet.updateMount(volume, () => files);
  const swapAt = Math.min(...swaps.values());
  let unreadyAt: number | undefined;
  let otherUnready = false;
  const watchMs = (TIMINGS.canaryHoldSeconds + TIMINGS.checkSeconds + SLACK_SECONDS) * 1000;
  while (Date.now() - swapAt < watchMs) {
    if (unreadyAt === undefined && !fleet.replica(0).ready()) unreadyAt = Date.now();
    if (!fleet.replica(1).ready()) otherUnready = true;
    await sleep(100);
  }
  const served = await freshLogins(fleet, 10);
  const clients = countsSince(load.counts(), before);
  report(`${label}, the clients`, clients);
  const log0 = fs.readFileSync(fleet.replica(0).processes[0].logFile, "utf8");
  const log1 = fs.readFileSync(fleet.replica(1).processes[0].logFile, "utf8");
  // restore: the canary applies the good files at once and is ready again
  await fleet.updateMount(volume, () => good);
  const t0 = Date.now();
  while (!fleet.replica(0).ready() && Date.now() - t0 < 20_000) await sleep(100);
  return {
    ...(unreadyAt !== undefined ? { unreadySeconds: (unreadyAt - swapAt) / 1000 } : {}),
    otherUnready,
    served,
    log0,
    log1,
    clients,
    readyAgain: fleet.replica(0).ready(),
  };
}

export const SCENARIOS = {
  password: "a wrong password in the auth file",
  ca: "a wrong server CA",
} as const;

export function wrongPassword(fleet: Fleet): Record<string, string> {
  const text = fleet.specs()[0].mounts[VOLUMES.auth][AUTH_FILE];
  const files = { [AUTH_FILE]: text.replace(/^("clipper_app" )"[^"]*"$/m, '$1"not-the-password"') };
  assert.notEqual(files[AUTH_FILE], text);
  return files;
}

export function breakPassword(w: World): Promise<Breaking> {
  return breakingChange(w, SCENARIOS.password, VOLUMES.auth, wrongPassword(w.fleet));
}

export function breakServerCa(w: World): Promise<Breaking> {
  const other = makeTestCa(w.fleet.world.dir, "other-ca");
  const files = { ...w.fleet.specs()[0].mounts[VOLUMES.tls], [TLS_FILES.serverCa]: other.certPem };
  return breakingChange(w, SCENARIOS.ca, VOLUMES.tls, files);
}

export interface BrokenRoll {
  /** pgbouncer-0 was ever ready with the wrong password, within the watch. */
  readonly everReady: boolean;
  readonly served: number;
  readonly clients: LoadCounts;
  readonly log0: string;
  readonly readyAfterFix: boolean;
  /**
   * pgbouncer-0 restarted with the idle login's new password before PostgreSQL has it (a restart inside a
   * rotation's window): unready, then ready by itself this many seconds after PostgreSQL got it.
   */
  readonly readyAfterPostgres?: number;
  /** That pod's log, when it turned ready before PostgreSQL had the password, or stayed unready after. */
  readonly aheadLog?: string;
}

/**
 * A roll that brings a wrong password: pgbouncer-0 is replaced with it (as a StatefulSet rolling update
 * replaces its pods, one at a time, each once the last is ready). It must never turn ready, so the update
 * stops there; pgbouncer-1 serves; a replacement with the good files is ready again.
 */
export async function brokenRoll({ fleet, load }: World): Promise<BrokenRoll> {
  const bad = wrongPassword(fleet);
  const before = load.counts();
  await fleet.replace(0, { [VOLUMES.auth]: bad }, { awaitReady: false });
  let everReady = false;
  const t0 = Date.now();
  while (Date.now() - t0 < (TIMINGS.checkSeconds + SLACK_SECONDS + 5) * 1000) {
    if (fleet.replica(0).ready()) everReady = true;
    await sleep(50);
  }
  const served = await freshLogins(fleet, 10);
  const clients = countsSince(load.counts(), before);
  report("a roll with a wrong password, the clients", clients);
  const log0 = fs.readFileSync(fleet.replica(0).processes[0].logFile, "utf8");
  await fleet.replace(0, fleet.specs({}, [0])[0].mounts);
  const readyAfterFix = fleet.replica(0).ready();

  // the second login's new password reaches pgbouncer-0 (a restart) before PostgreSQL has it
  const text = fleet.specs()[0].mounts[VOLUMES.auth][AUTH_FILE];
  const ahead = { [AUTH_FILE]: text.replace(/^("clipper_app_b" )"[^"]*"$/m, '$1"the-next-password"') };
  assert.notEqual(ahead[AUTH_FILE], text);
  await fleet.replace(0, { [VOLUMES.auth]: ahead }, { awaitReady: false });
  await sleep((TIMINGS.checkSeconds + 2) * 1000);
  const aheadLog = () => fs.readFileSync(fleet.replica(0).processes[0].logFile, "utf8");
  if (fleet.replica(0).ready())
    return { everReady, served, clients, log0, readyAfterFix, aheadLog: aheadLog() };
  await fleet.world.pg.psql(`ALTER ROLE "clipper_app_b" PASSWORD 'the-next-password'`);
  const agreedAt = Date.now();
  while (!fleet.replica(0).ready() && Date.now() - agreedAt < 20_000) await sleep(100);
  return {
    everReady,
    served,
    clients,
    log0,
    readyAfterFix,
    ...(fleet.replica(0).ready()
      ? { readyAfterPostgres: (Date.now() - agreedAt) / 1000 }
      : { aheadLog: aheadLog() }),
  };
}

export interface Restart {
  readonly restartMs: number;
  readonly unreadyMs: number[];
  readonly counts: LoadCounts;
  /** default_pool_size of every process, once the change swapped in while PostgreSQL was down went through. */
  readonly poolSizes: string[];
  readonly log0: string;
}

/** The pool size the restart scenario's change sets. */
export const CHANGED_POOL_SIZE = "19";

export async function restartPostgres({ fleet, load }: World): Promise<Restart> {
  const before = load.counts();
  const pg = fleet.world.pg;
  const unready = [0, 0];
  const since: (number | undefined)[] = [undefined, undefined];
  let watching = true;
  const close = (o: number) => {
    const t = since[o];
    if (t !== undefined) unready[o] = Math.max(unready[o], Date.now() - t);
    since[o] = undefined;
  };
  const watch = (async () => {
    while (watching) {
      for (const o of [0, 1]) {
        if (!fleet.replica(o).ready()) since[o] ??= Date.now();
        else close(o);
      }
      await sleep(50);
    }
  })();
  const t0 = Date.now();
  // a change arrives while PostgreSQL is down: the check cannot log in, so it waits and is checked again
  const changed = fleet.specs({
    settings: {
      ...fleet.settings,
      pool: { ...fleet.settings.pool, defaultPoolSize: Number(CHANGED_POOL_SIZE) },
    },
  });
  await pg.restart({
    mode: "fast",
    downMs: 2000 + TIMINGS.checkSeconds * 1000,
    whileDown: () => fleet.updateMount(VOLUMES.config, (o) => changed[o].mounts[VOLUMES.config]),
  });
  const restartMs = Date.now() - t0;
  await sleep(TIMINGS.failureSeconds * 1000 + 2000);
  watching = false;
  await watch;
  close(0);
  close(1);
  const counts = countsSince(load.counts(), before);
  report(`PostgreSQL restart (${(restartMs / 1000).toFixed(1)} s)`, counts);
  console.log(`      longest unready: ${unready.map((u) => `${(u / 1000).toFixed(1)} s`).join(", ")}`);
  // past the hold, every process runs the change
  const until = Date.now() + (TIMINGS.canaryHoldSeconds + TIMINGS.checkSeconds + SLACK_SECONDS) * 1000;
  let poolSizes: string[] = [];
  do {
    poolSizes = [];
    for (const r of fleet.replicas()) {
      for (const p of r.processes)
        poolSizes.push(await configValue(p.socketDir, r.port, "default_pool_size"));
    }
    if (poolSizes.every((v) => v === CHANGED_POOL_SIZE)) break;
    await sleep(500);
  } while (Date.now() < until);
  const log0 = fs.readFileSync(fleet.replica(0).processes[0].logFile, "utf8");
  return { restartMs, unreadyMs: unready, counts, poolSizes, log0 };
}

export interface Replacement {
  readonly counts: LoadCounts;
  readonly cancels: CancelRound;
  readonly readyAfter: boolean;
}

export async function replaceReplica({ fleet, load }: World): Promise<Replacement> {
  const before = load.counts();
  const replaced = fleet.replace(1);
  replaced.catch(() => undefined);
  let cancels: CancelRound;
  try {
    while (fleet.replica(1).inService) await sleep(20);
    // every client now on one replica: the round's queries queue behind the load's transactions for a
    // server before they run (a cancel reaches only a running query), so they get 5 s for it
    cancels = await cancelRound(fleet, { psycopg: 5, harness: 5, sleepSeconds: 10, cancelAfterMs: 300 });
  } finally {
    await replaced.catch(() => undefined);
  }
  const times = await replaced;
  await sleep(1000);
  const counts = countsSince(load.counts(), before);
  report(
    `replacing pgbouncer-1 (out ${((times.signalledAt - times.leftAt) / 1000).toFixed(1)} s before INT, ` +
      `stopped ${((times.stoppedAt - times.signalledAt) / 1000).toFixed(1)} s after, ready again ` +
      `${(((times.readyAt ?? Number.NaN) - times.stoppedAt) / 1000).toFixed(1)} s later)`,
    counts,
  );
  console.log(
    `      cancels during the replacement: ${cancels.cancelled}/${cancels.sent} arrived, lost ${cancels.lost}`,
  );
  return { counts, cancels, readyAfter: fleet.replica(1).ready() };
}

/** Runs `fn` and keeps its result or its error for the `it` that judges it. */
export async function settle<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: Error }> {
  try {
    return { value: await fn() };
  } catch (e) {
    return { error: e instanceof Error ? e : new Error(String(e)) };
  }
}

export function valueOf<T>(r: { value?: T; error?: Error } | undefined): T {
  if (!r) throw new Error("the scenario did not run");
  if (r.error) throw r.error;
  return r.value as T;
}
