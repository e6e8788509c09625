/**
 * The servers of a local world as one group: a scratch folder, each server started detached from it (as an
 * unprivileged user when the run is root) with its log in `logs/`, every PID tracked so that the exit hook
 * kills them after a crash or Ctrl-C, and `stop()` ending them in reverse order.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runOk } from "../../common";
import { runAsIds, signal, sleep, track, untrack } from "../../harness/proc";
import type { Log } from "../context";
import type { Toolchain } from "../toolchain/toolchain";

/** One server this run started. */
export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly exe: string;
  readonly exited: Promise<void>;
}

/** What starting a server needs: the world's folder, its binaries, and the group to start it in. */
export interface Servers {
  /** Scratch folder of the world (logs, certificates, data). */
  readonly dir: string;
  /** The binary of `name`, where the run's user can execute it. */
  serverBin(name: string): string;
  /** Starts `exe` as the server `name`, logging into `<dir>/logs/<name>.log`. */
  start(name: string, exe: string, args: readonly string[]): Proc;
  /** A check for `waitFor`: fails fast, with the tail of its log, when the server died meanwhile. */
  alive(p: Proc): () => Promise<void>;
}

export interface ServerGroup extends Servers {
  /** Stops every server (reverse order: SIGTERM, then SIGKILL after 10 s) and removes `dir`. */
  stop(): Promise<void>;
  /** Hands the servers over (to `--keep`): the group neither stops nor tracks them any more. */
  release(): Proc[];
}

/** Creates the world's folder and an empty group of servers in it. */
export function openServerGroup(tools: Toolchain, log: Log): ServerGroup {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-e2e-"));
  fs.chmodSync(dir, 0o755);
  const procs: Proc[] = [];
  const key = {};
  track(key, () => procs.map((p) => p.pid), dir);
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? runAsIds() : undefined;
  if (ids) fs.chownSync(dir, ids.uid, ids.gid);

  return {
    dir,
    serverBin: (name) => runnableBin(tools.bin(name), dir, asRoot),
    start(name, exe, args) {
      const proc = startDetached({ dir, path: tools.path, ids }, name, exe, args);
      procs.push(proc);
      log(`world: started ${name} (pid ${proc.pid}, log ${path.join(dir, "logs", `${name}.log`)})`);
      return proc;
    },
    alive: (p) => async () => {
      if (!(await settled(p.exited, 0))) return;
      const tail = fs
        .readFileSync(path.join(dir, "logs", `${p.name}.log`), "utf8")
        .split("\n")
        .slice(-25)
        .join("\n");
      throw new Error(`e2e: ${p.name} exited during start-up; last lines of its log:\n${tail}`);
    },
    async stop() {
      for (const p of [...procs].reverse()) {
        signal(p.pid, "SIGTERM");
        if (!(await settled(p.exited, 10_000))) signal(p.pid, "SIGKILL");
        await settled(p.exited, 5_000);
      }
      procs.length = 0;
      untrack(key);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    release() {
      const released = [...procs];
      procs.length = 0;
      untrack(key);
      return released;
    },
  };
}

/**
 * Binaries under /root are out of the unprivileged user's reach: as root, `file` hard-linked (or copied)
 * into `<dir>/bin`; else `file` itself.
 */
function runnableBin(file: string, dir: string, asRoot: boolean): string {
  const src = fs.realpathSync(file);
  if (!asRoot) return src;
  const dst = path.join(dir, "bin", path.basename(file));
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  try {
    fs.linkSync(src, dst);
  } catch {
    fs.copyFileSync(src, dst);
    fs.chmodSync(dst, 0o755);
  }
  return dst;
}

/** Starts `exe` detached (its own process group: Ctrl-C reaches us, and we stop the servers in order). */
function startDetached(
  w: { dir: string; path: string; ids?: { uid: number; gid: number } },
  name: string,
  exe: string,
  args: readonly string[],
): Proc {
  const logFile = path.join(w.dir, "logs", `${name}.log`);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, "a");
  try {
    const child = spawn(exe, [...args], {
      stdio: ["ignore", fd, fd],
      detached: true,
      env: { PATH: w.path, HOME: w.dir },
      ...(w.ids ? { uid: w.ids.uid, gid: w.ids.gid } : {}),
    });
    if (child.pid === undefined) throw new Error(`e2e: could not start ${name}`);
    child.unref();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    return { name, pid: child.pid, exe, exited };
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether `p` settles within `ms`. */
function settled(p: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), sleep(ms).then(() => false)]);
}

/** When the run is root: hands `target` (recursively) to the user the servers run as. */
export async function chownToRunUser(target: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = runAsIds();
  await runOk("chown", ["-R", `${uid}:${gid}`, target]);
}
