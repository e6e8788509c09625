/**
 * The render as a child process, as a person runs it (`npm run render -- --stack <s> --out <dir>`): what the
 * e2e compares with the live objects and applies as a GitOps source.
 */
import * as path from "node:path";
import { PROJECT_DIR } from "../../stacks/stack-file";
import { type RunResult, run } from "../common";

/** The render's entry, run with ts-node from the project root. */
export const RENDER_ENTRY = path.join(PROJECT_DIR, "tools", "render", "main.ts");

/** Runs the render of `stack` into `dir` (`--set` for each of `sets`) to its end, failed or not. */
export function renderProcess(
  stack: string,
  dir: string,
  sets: Readonly<Record<string, string>> = {},
): Promise<RunResult> {
  const args = [
    "--transpile-only",
    "--swc",
    RENDER_ENTRY,
    "--stack",
    stack,
    "--out",
    dir,
    ...Object.entries(sets).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ];
  return run(path.join(PROJECT_DIR, "node_modules", ".bin", "ts-node"), args, {
    cwd: PROJECT_DIR,
    timeoutMs: 180_000,
  });
}

/** Renders `stack` into `dir` (`--set` for each of `sets`); rejects with the render's own error. */
export async function renderToDir(
  stack: string,
  dir: string,
  sets: Readonly<Record<string, string>> = {},
): Promise<string> {
  const r = await renderProcess(stack, dir, sets);
  if (r.code !== 0) throw new Error(`the render of ${stack} exited ${r.code}: ${r.stderr.trim()}`);
  return dir;
}
