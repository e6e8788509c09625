/**
 * Process plumbing shared by the harness: free ports, temp dirs the `postgres` user owns, running commands
 * as that user, and a last-resort cleanup when the Node process exits with servers still running.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { type RunOptions, type RunResult, run, runOk } from "../common";

/** The unprivileged user every server runs as: PostgreSQL refuses root. */
export const RUN_AS = "postgres";

export interface UserIds {
  readonly uid: number;
  readonly gid: number;
}

interface RunAsUser extends UserIds {
  readonly home: string;
  readonly shell: string;
}

let ids: RunAsUser | undefined;

/** uid/gid of {@link RUN_AS}; fails with a clear message when the user does not exist. */
export function runAsIds(): UserIds {
  return runAsUserEntry();
}

function runAsUserEntry(): RunAsUser {
  if (ids) return ids;
  const passwd = fs.readFileSync("/etc/passwd", "utf8").split("\n");
  const entry = passwd.map((l) => l.split(":")).find((f) => f[0] === RUN_AS);
  if (!entry) {
    throw new Error(
      `harness: user "${RUN_AS}" does not exist; install Debian's postgresql-15 package (it creates the user)`,
    );
  }
  ids = { uid: Number(entry[2]), gid: Number(entry[3]), home: entry[5] ?? "/", shell: entry[6] || "/bin/sh" };
  return ids;
}

/**
 * How a child runs as {@link RUN_AS}: its ids, which the child sets before it execs (its group, no
 * supplementary group, then its user), and the variables `runuser -u` sets (HOME, SHELL, USER, LOGNAME) over
 * this process's environment and `env`. What `runuser` did, without its PAM session: 5.9 CPU-ms a command,
 * against 2.3 (100 runs of /bin/true from Node, 2026-12-07), and it ran a few hundred times a test run.
 */
function asRunAsUser(env?: NodeJS.ProcessEnv): { uid: number; gid: number; env: NodeJS.ProcessEnv } {
  const u = runAsUserEntry();
  return {
    uid: u.uid,
    gid: u.gid,
    env: { ...process.env, ...env, HOME: u.home, SHELL: u.shell, USER: RUN_AS, LOGNAME: RUN_AS },
  };
}

/** Fails with a message that names the missing package when a binary is absent. */
export function requireBinary(file: string, pkg: string): string {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new Error(`harness: ${file} is missing; install the Debian package "${pkg}"`);
  }
  return file;
}

/** A mktemp dir under the system temp dir, owned by {@link RUN_AS} and readable by everyone. */
export function makeRunDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const { uid, gid } = runAsIds();
  fs.chownSync(dir, uid, gid);
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Writes a file the {@link RUN_AS} user owns (mode 0600 unless told otherwise). */
export function writeOwned(file: string, text: string, mode = 0o600): void {
  fs.writeFileSync(file, text, { mode });
  const { uid, gid } = runAsIds();
  fs.chownSync(file, uid, gid);
  fs.chmodSync(file, mode);
}

/** Listens on `port` of 127.0.0.1 (0: any) and closes again; resolves with the port, or undefined if taken. */
function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", (e: NodeJS.ErrnoException) => (e.code === "EADDRINUSE" ? resolve(undefined) : reject(e)));
    srv.listen(port, "127.0.0.1", () => {
      const addr = srv.address();
      const got = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(got));
    });
  });
}

/** The lowest port of the kernel's ephemeral range, which outgoing connections take their local ports from. */
function ephemeralLow(): number {
  try {
    return Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  } catch {
    return 32768;
  }
}

const handedOut = new Set<number>();

/** Where the processes on this machine claim the ports {@link freePort} hands out: a file per port. */
export const PORT_CLAIMS = path.join(os.tmpdir(), "clipper-pgbouncer-ports");
/** The ports this process claimed there, released at its exit. */
const claimed = new Set<number>();

/**
 * Claims `port` for this process across the machine, unless a live process holds it: the file
 * `PORT_CLAIMS/<port>` holds the claimant's PID, made exclusively, and a dead claimant's is taken over. The
 * claims go when the process exits.
 */
export function claimPort(port: number): boolean {
  fs.mkdirSync(PORT_CLAIMS, { recursive: true, mode: 0o1777 });
  const file = path.join(PORT_CLAIMS, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx" });
      claimed.add(port);
      if (claimed.size === 1) process.once("exit", releasePorts);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const holder = Number(fs.readFileSync(file, "utf8").trim());
      if (holder === process.pid || isAlive(holder)) return false;
      fs.rmSync(file, { force: true });
    }
  }
  return false;
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function releasePorts(): void {
  for (const port of claimed) fs.rmSync(path.join(PORT_CLAIMS, String(port)), { force: true });
}

/**
 * A TCP port free on 127.0.0.1 now, for a server the caller starts soon after (or again later, as a replaced
 * replica does): from below the kernel's ephemeral range, so that no outgoing connection takes it as its local
 * port in between, as one did to a fleet replica's port picked by listening on port 0 (`Address already in
 * use`, on cores busy with other tests' connections). Never the same port twice in a process, nor one that
 * another live process on the machine was handed (npm test's parallel workers: a replaced replica's port is
 * free while it restarts, and another worker took it once).
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  const min = 10_000;
  for (let i = 0; i < 200 && low - min > 1000; i++) {
    const port = min + crypto.randomInt(low - min);
    if (handedOut.has(port)) continue;
    if ((await tryListen(port)) === port && claimPort(port)) {
      handedOut.add(port);
      return port;
    }
  }
  // no room below the ephemeral range: any port the kernel gives
  const port = await tryListen(0);
  if (!port) throw new Error("harness: no free port on 127.0.0.1");
  return port;
}

/**
 * Runs a command to completion as {@link RUN_AS} (from a copy that user can run); never throws on a non-zero
 * exit.
 */
export function runAsUser(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(runnableCopy(file), args, { ...opts, ...asRunAsUser(opts.env) });
}

/** {@link runAsUser}, returning stdout and throwing with stderr when the command fails. */
export function runAsUserOk(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return runOk(runnableCopy(file), args, { ...opts, ...asRunAsUser(opts.env) });
}

/** Whether every other user may run `file`: it and each folder above it carry the "others" execute bit. */
export function othersCanRun(file: string): boolean {
  let p = path.resolve(file);
  try {
    if ((fs.statSync(p).mode & 0o001) === 0) return false;
    for (p = path.dirname(p); ; p = path.dirname(p)) {
      if ((fs.statSync(p).mode & 0o001) === 0) return false;
      if (p === path.dirname(p)) return true;
    }
  } catch {
    return false;
  }
}

const copies = new Map<string, string>();

/**
 * `file`, or a copy the {@link RUN_AS} user can run. A binary built under a closed folder (a clone in a
 * `mktemp -d` folder, `/root`) is copied once per process into a temp folder open to that user; a
 * statically found one (`/usr/sbin/pgbouncer`) is used as it is.
 */
export function runnableCopy(file: string): string {
  if (othersCanRun(file)) return file;
  const known = copies.get(file);
  if (known) return known;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "harness-bin-"));
  fs.chmodSync(dir, 0o755);
  const copy = path.join(dir, path.basename(file));
  fs.copyFileSync(file, copy);
  fs.chmodSync(copy, 0o755);
  copies.set(file, copy);
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return copy;
}

/** Starts a long-running server as {@link RUN_AS}, its stdout and stderr appended to `logFile`. */
export function spawnAsUser(file: string, args: readonly string[], logFile: string): ChildProcess {
  const fd = fs.openSync(logFile, "a");
  try {
    return spawn(runnableCopy(file), [...args], { ...asRunAsUser(), stdio: ["ignore", fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
}

/** Resolves when the child has exited (immediately when it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves true when `p` settles within `ms`, false otherwise. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a pidfile; undefined while it does not exist yet. */
export function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").split("\n")[0].trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Servers still running when Node exits (a crashed test, Ctrl-C in a CLI): killed and their dirs removed
 * synchronously from the exit hook, so nothing outlives the run.
 */
const live = new Map<object, { pids: () => (number | undefined)[]; dir: string }>();
let hooked = false;

export function track(key: object, pids: () => (number | undefined)[], dir: string): void {
  live.set(key, { pids, dir });
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const { pids: p, dir: d } of live.values()) {
      for (const pid of p()) signal(pid, "SIGKILL");
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
}

export function untrack(key: object): void {
  live.delete(key);
}

/** For command-line tools: Ctrl-C and SIGTERM run the exit hook (mocha handles its own signals). */
export function exitOnSignals(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nharness: ${sig}, stopping servers\n`);
      process.exit(130);
    });
  }
}
