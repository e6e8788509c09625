/**
 * `npm run fleet -- --stack <stack> [--replicas N] [--processes P] [--set key=value ...]` and
 * `npm run fleet -- --down`.
 *
 * Starts the local fleet (./fleet.ts): N replicas of P PgBouncer processes, each run by the pod's own script
 * from the stack's render, behind a balancer, in front of a local PostgreSQL 15 that serves TLS only. Prints
 * libpq's `export` lines and each replica's admin socket folder, then waits until Ctrl-C or `--down`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { listStacks } from "../../stacks/stack-file";
import { Args, UsageError, runMain } from "../common";
import { pgBinary } from "../harness/postgres";
import { signal, sleep } from "../harness/proc";
import { type Fleet, fleetSettings, startFleet, startTime } from "./fleet";

/** Where a running fleet records its PIDs, for `--down`. */
export const FLEET_STATE_FILE =
  process.env.CLIPPER_FLEET_STATE ?? path.join(os.tmpdir(), "clipper-pgbouncer-fleet.json");

interface FleetState {
  /** This command's PID: `--down` asks it to stop the fleet. */
  readonly pid: number;
  /** Every other PID, killed by `--down` when the command does not stop them in time. */
  readonly pids: number[];
  /** Each PID's start time (/proc/<pid>/stat), so that a PID the system reused is never signalled. */
  readonly starts: Record<number, string>;
  readonly dir: string;
}

const PSQL = pgBinary("psql");

const USAGE =
  `usage: npm run fleet -- --stack <${listStacks().join("|")}> [--replicas N] [--processes P] ` +
  "[--set section.field=value ...] | --down";

/** `--down`: asks the fleet's command to stop (TERM), then kills by PID whatever is left. */
async function down(): Promise<number> {
  let state: FleetState;
  try {
    state = JSON.parse(fs.readFileSync(FLEET_STATE_FILE, "utf8")) as FleetState;
  } catch {
    console.log(`fleet: nothing to stop (no ${FLEET_STATE_FILE})`);
    return 0;
  }
  // the same process only: alive, and started when it was recorded
  const same = (pid: number) => state.starts[pid] !== undefined && startTime(pid) === state.starts[pid];
  signal(state.pid, "SIGTERM");
  const started = Date.now();
  while (same(state.pid) && Date.now() - started < 30_000) await sleep(100);
  const left = [state.pid, ...state.pids].filter(same);
  for (const p of left) signal(p, "SIGKILL");
  if (left.length > 0) fs.rmSync(state.dir, { recursive: true, force: true });
  fs.rmSync(FLEET_STATE_FILE, { force: true });
  console.log(`fleet: stopped${left.length > 0 ? ` (killed ${left.length} left running)` : ""}`);
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const a = new Args(argv);
  if (a.flag("down")) {
    a.done();
    return down();
  }
  const stack = a.string("stack");
  if (!listStacks().includes(stack)) {
    throw new UsageError(`--stack is "${stack}"; the stacks are ${listStacks().join(", ")}`);
  }
  const sets = a.all("set").map((s) => {
    if (!/^[A-Za-z][\w.]*=/.test(s)) throw new UsageError(`--set "${s}" is not section.field=value`);
    return [s.slice(0, s.indexOf("=")), s.slice(s.indexOf("=") + 1)] as const;
  });
  const replicas = a.optional("replicas");
  const processes = a.optional("processes");
  a.done();
  const overrides: Record<string, string> = Object.fromEntries(sets);
  if (replicas !== undefined) overrides["pgbouncer.replicas"] = replicas;
  if (processes !== undefined) overrides["pgbouncer.processesPerPod"] = processes;
  if (fs.existsSync(FLEET_STATE_FILE)) {
    throw new Error(`fleet: one is running (${FLEET_STATE_FILE}); stop it first: npm run fleet -- --down`);
  }
  const settings = fleetSettings(stack, overrides);

  const running: { fleet?: Fleet } = {};
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      console.error("\nfleet: stopping");
      try {
        await running.fleet?.stop();
      } finally {
        fs.rmSync(FLEET_STATE_FILE, { force: true });
      }
      process.exit(0);
    })();
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, stop);

  const f = await startFleet({ settings, log: (l) => console.error(l) });
  running.fleet = f;
  const record = () => {
    const pids = f.pids();
    const starts = Object.fromEntries(
      [process.pid, ...pids].map((p) => [p, startTime(p)]).filter(([, t]) => t !== undefined),
    ) as Record<number, string>;
    fs.writeFileSync(
      FLEET_STATE_FILE,
      JSON.stringify({ pid: process.pid, pids, starts, dir: f.dir } satisfies FleetState),
    );
  };
  record();
  console.log(
    `# ${f.replicas().length} replicas x ${settings.workload.processesPerPod} PgBouncer processes of ` +
      `stack ${stack}, behind a balancer on 127.0.0.1:${f.balancer.port}`,
  );
  for (const line of f.exportLines()) console.log(line);
  console.log("# each process's admin console, over its unix socket as the postgres user:");
  for (const r of f.replicas()) {
    for (const p of r.processes) {
      console.log(
        `#   ${r.name} process ${p.process}: ${p.socketDir} port ${r.port}:  ` +
          `env -i /usr/sbin/runuser -u postgres -- ${PSQL} -h ${p.socketDir} -p ${r.port} -U pgbouncer pgbouncer`,
      );
    }
  }
  console.log("# stop it with Ctrl-C or: npm run fleet -- --down");
  // PgBouncer's validations and relays come and go: keep the PID file current for --down
  for (;;) {
    await sleep(2000);
    if (!stopping) record();
  }
}

if (require.main === module) runMain(USAGE, () => main(process.argv.slice(2)));
