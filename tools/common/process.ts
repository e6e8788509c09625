/** Running a command to completion, the one way every tool does it. */
import { execFile } from "node:child_process";
import * as path from "node:path";

export interface RunOptions {
  /** Added to this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
  /** @default 60 s; the command is killed after it */
  readonly timeoutMs?: number;
  /** Written to the command's stdin, which is closed after it (closed at once without). */
  readonly input?: string;
  /** @default this process's working directory */
  readonly cwd?: string;
  /** The user and group the command runs as (set in the child before it execs; needs root). @default this process's */
  readonly uid?: number;
  readonly gid?: number;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion; never throws on a non-zero exit (the caller decides). */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      [...args],
      {
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
        ...(opts.uid === undefined ? {} : { uid: opts.uid }),
        ...(opts.gid === undefined ? {} : { gid: opts.gid }),
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr: stderr || (err && code !== 0 ? err.message : "") });
      },
    );
    child.stdin?.end(opts.input);
  });
}

/** Runs a command and returns its stdout, throwing with its stderr when it fails. */
export async function runOk(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    throw new Error(`${path.basename(file)} ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}
