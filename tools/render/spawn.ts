/**
 * The render as a child process, as a person runs it (`npm run render -- --stack <s> --out <dir>`): what the
 * e2e compares with the live objects and applies as a GitOps source.
 */
import * as path from "node:path";
import { PROJECT_DIR } from "../../stacks/stack-file";
import { runOk } from "../common";

/** The render's entry, run with ts-node from the project root. */
export const RENDER_ENTRY = path.join(PROJECT_DIR, "tools", "render", "main.ts");

/** Renders `stack` into `dir` (`--set` for each of `sets`); rejects with the render's own error. */
export async function renderToDir(
  stack: string,
  dir: string,
  sets: Readonly<Record<string, string>> = {},
): Promise<string> {
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
  await runOk(path.join(PROJECT_DIR, "node_modules", ".bin", "ts-node"), args, {
    cwd: PROJECT_DIR,
    timeoutMs: 180_000,
  });
  return dir;
}
