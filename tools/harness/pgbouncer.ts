/** The PgBouncer release the stacks deploy (or another by path), run as `postgres` from files in a mktemp dir, one or several processes on one port. */
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { pgbouncerBinary } from "./binary";
import { iniParameter } from "../../components/pgbouncer";
import {
  exited,
  freePort,
  makeRunDir,
  readPid,
  requireBinary,
  runAsIds,
  runnableCopy,
  signal,
  sleep,
  spawnAsUser,
  track,
  untrack,
  within,
  writeOwned,
} from "./proc";

/** Where one PgBouncer process keeps its files; each process of a group has its own. */
export interface PgBouncerFiles {
  /** This process's directory. */
  readonly dir: string;
  /** The auth file, shared by every process. */
  readonly authFile: string;
  readonly unixSocketDir: string;
  readonly pidfile: string;
  readonly logfile: string;
  readonly iniFile: string;
  /** The port every process of the group listens on. */
  readonly port: number;
  /** 0-based process number within the group. */
  readonly index: number;
  /** The unix socket directory of every process of the group, in order (for peering). */
  readonly peerSocketDirs: readonly string[];
}

export interface StartPgBouncerOptions {
  /**
   * The ini text, or a function that renders it from the paths and port the harness picked (use
   * `harnessIni`). A text must carry its own `listen_port`, and `pidfile` (the harness signals that PID).
   */
  readonly ini: string | ((files: PgBouncerFiles) => string);
  /** The auth file's content (`"user" "secret"` lines). */
  readonly authFile: string;
  /**
   * PgBouncer processes sharing one port through `so_reuseport` (the ini must set it); needs the function
   * form of `ini`. @default 1
   */
  readonly processes?: number;
  /** Listening port for the function form. @default a free port */
  readonly port?: number;
  /**
   * The pgbouncer binary. Pass `DEBIAN_PGBOUNCER_BIN` only to exercise an older release.
   * @default the release the stacks deploy, see `pgbouncerBinary`
   */
  readonly bin?: string;
  /**
   * The command that runs PgBouncer, when not the binary itself: given the binary (a path the `postgres`
   * user can run) and the ini file, the argv to spawn as `postgres` (e.g. the pod's `/bin/sh -c` reload
   * script around it). The harness still signals PgBouncer by its pidfile and waits for this command to end.
   * @default `[bin, iniFile]`
   */
  readonly command?: (bin: string, iniFile: string) => readonly string[];
}

export interface PgBouncerHandle {
  readonly host: string;
  readonly port: number;
  readonly processes: number;
  readonly files: readonly PgBouncerFiles[];
  /** PIDs of the running processes. */
  pids(): number[];
  /**
   * Sends `sig` to every process and waits until they are gone (SIGKILL after `timeoutMs`), then removes
   * the temp dir. SIGINT = safe shutdown (SHUTDOWN WAIT_FOR_SERVERS); SIGTERM = SHUTDOWN
   * WAIT_FOR_CLIENTS since 1.23 (immediate before); SIGQUIT = immediate.
   * @default SIGTERM, 30 s
   */
  stop(sig?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
  /**
   * Stops every process with `sig` (as `stop`, keeping the files) and starts them again on the same port.
   * Resolves with the milliseconds the stop took and the milliseconds until the port accepted again.
   */
  restart(sig?: NodeJS.Signals): Promise<{ stopMs: number; downMs: number }>;
  /** Log file and stderr of every process so far. */
  logs(): string;
}

/** Starts PgBouncer as `postgres`; resolves once every process is listening and the port accepts. */
export async function startPgBouncer(opts: StartPgBouncerOptions): Promise<PgBouncerHandle> {
  const bin = opts.bin ? requireBinary(opts.bin, "pgbouncer") : pgbouncerBinary();
  runAsIds();
  const count = opts.processes ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new Error(`harness: processes must be >= 1, got ${count}`);
  if (typeof opts.ini === "string" && count > 1) {
    throw new Error("harness: several processes need an ini function (each needs its own pidfile)");
  }
  const dir = makeRunDir("harness-pgb");
  const authFile = path.join(dir, "userlist.txt");
  const key = {};
  let children: ChildProcess[] = [];
  let files: PgBouncerFiles[] = [];
  track(key, () => files.map((f) => readPid(f.pidfile)), dir);
  const { uid, gid } = runAsIds();
  let host = "127.0.0.1";
  let port = 0;

  const launch = async (): Promise<void> => {
    children = files.map((f) => {
      const argv = opts.command ? opts.command(runnableCopy(bin), f.iniFile) : [bin, f.iniFile];
      return spawnAsUser(argv[0], argv.slice(1), path.join(f.dir, "stderr.log"));
    });
    await waitListening(host, port, files, children);
  };

  const halt = async (sig: NodeJS.Signals, timeoutMs: number): Promise<void> => {
    for (const f of files) signal(readPid(f.pidfile), sig);
    const all = Promise.all(children.map(exited));
    if (!(await within(all, timeoutMs))) {
      for (const f of files) signal(readPid(f.pidfile), "SIGKILL");
      await within(all, 5000);
    }
  };

  try {
    writeOwned(authFile, opts.authFile);
    port = opts.port ?? (typeof opts.ini === "string" ? 0 : await freePort());
    // Named as the pod names them, <root>/<process> from 1 (components/pgbouncer/pod-ini.ts, socketDir).
    const peerSocketDirs = Array.from({ length: count }, (_, i) => path.join(dir, String(i + 1)));
    for (let i = 0; i < count; i++) {
      const pdir = peerSocketDirs[i];
      fs.mkdirSync(pdir);
      fs.chownSync(pdir, uid, gid);
      const f: PgBouncerFiles = {
        dir: pdir,
        authFile,
        unixSocketDir: pdir,
        pidfile: path.join(pdir, "pgbouncer.pid"),
        logfile: path.join(pdir, "pgbouncer.log"),
        iniFile: path.join(pdir, "pgbouncer.ini"),
        port,
        index: i,
        peerSocketDirs,
      };
      let text: string;
      if (typeof opts.ini === "string") {
        text = opts.ini;
        const p = Number(iniParameter(text, "pgbouncer", "listen_port"));
        const pidfile = iniParameter(text, "pgbouncer", "pidfile");
        if (!Number.isInteger(p) || p < 1) throw new Error("harness: the ini has no listen_port");
        if (!pidfile) throw new Error("harness: the ini has no pidfile; the harness signals that PID");
        port = p;
        host = iniParameter(text, "pgbouncer", "listen_addr") || host;
        files.push({ ...f, port, pidfile, logfile: iniParameter(text, "pgbouncer", "logfile") || f.logfile });
      } else {
        text = opts.ini(f);
        host = iniParameter(text, "pgbouncer", "listen_addr") || host;
        files.push(f);
      }
      writeOwned(f.iniFile, text, 0o644);
    }
    if (host === "*" || host === "0.0.0.0") host = "127.0.0.1";
    await launch();
  } catch (e) {
    await halt("SIGKILL", 5000);
    untrack(key);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  let stopped = false;
  const logs = () =>
    files
      .map((f) => {
        const own = readOr(f.logfile);
        const err = readOr(path.join(f.dir, "stderr.log"));
        return `--- process ${f.index}\n${own}${err && err !== own ? err : ""}`;
      })
      .join("\n");

  return {
    host,
    port,
    processes: count,
    files,
    pids: () => files.map((f) => readPid(f.pidfile)).filter((p): p is number => p !== undefined),
    async stop(sig = "SIGTERM", timeoutMs = 30_000) {
      if (stopped) return;
      stopped = true;
      try {
        await halt(sig, timeoutMs);
      } finally {
        untrack(key);
        files = [];
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    async restart(sig = "SIGINT") {
      const t0 = Date.now();
      await halt(sig, 60_000);
      const stopMs = Date.now() - t0;
      for (const f of files) fs.rmSync(f.pidfile, { force: true });
      await launch();
      return { stopMs, downMs: Date.now() - t0 };
    },
    logs,
  };
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/** Every process has written its pidfile and the port accepts TCP connections. */
async function waitListening(
  host: string,
  port: number,
  files: readonly PgBouncerFiles[],
  children: readonly ChildProcess[],
): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < 20_000) {
    const dead = children.findIndex((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead >= 0) {
      const f = files[dead];
      throw new Error(
        `harness: pgbouncer process ${dead} exited at start:\n` +
          `${readOr(f.logfile)}${readOr(path.join(f.dir, "stderr.log"))}`,
      );
    }
    if (files.every((f) => readPid(f.pidfile) !== undefined) && (await canConnect(host, port))) return;
    await sleep(10);
  }
  throw new Error(`harness: pgbouncer did not listen on ${host}:${port} within 20 s`);
}
