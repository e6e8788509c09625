/**
 * The runbook's "Verify" commands, as the e2e runs them: read from docs/runbook.md, moved from prod to the
 * stack under test, each run by bash in the project folder as a person would, and checked against the value
 * its `# comment` promises.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { type StackSettings, loadStackSettings } from "../../../../stacks/settings";
import { PROJECT_DIR } from "../../../../stacks/stack-file";
import { run } from "../../../common";
import type { StackRun } from "./stack-run";

export interface VerifyCommand {
  readonly command: string;
  /** What the command prints (trimmed), when the runbook says. */
  readonly expect?: string;
}

/** The runbook's Verify block is written for prod. */
const RUNBOOK_STACK = "prod";

export function verifyCommands(stack: string, s: StackSettings): VerifyCommand[] {
  const runbook = fs.readFileSync(path.join(PROJECT_DIR, "docs", "runbook.md"), "utf8");
  const section = runbook.split("\n## Verify\n")[1]?.split("\n## ")[0] ?? "";
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error("docs/runbook.md has no ```sh block under ## Verify");
  const prod = loadStackSettings(RUNBOOK_STACK);
  const move = (text: string) =>
    text
      .replaceAll(`-n ${prod.namespace} `, `-n ${s.namespace} `)
      .replaceAll(`--stack ${RUNBOOK_STACK} `, `--stack ${stack} `)
      .replaceAll(`.${prod.namespace}.svc`, `.${s.namespace}.svc`);
  return block
    .trim()
    .split("\n")
    .map((line) => {
      const m = /^(.*?)\s+#\s+(.*)$/.exec(line);
      return m ? { command: move(m[1].trim()), expect: move(m[2].trim()) } : { command: move(line.trim()) };
    });
}

/** Runs each Verify command of the runbook with the stack's environment; each must print what it promises. */
export async function runVerifyCommands(r: StackRun): Promise<void> {
  for (const c of verifyCommands(r.stack, r.s)) {
    r.log(`$ ${c.command}`);
    const res = await run("bash", ["-c", c.command], {
      cwd: PROJECT_DIR,
      env: r.pulumi.env,
      timeoutMs: 180_000,
    });
    assert.equal(res.code, 0, `runbook's verify command failed: ${c.command}\n${res.stdout + res.stderr}`);
    if (c.expect !== undefined)
      assert.equal(res.stdout.trim(), c.expect, `runbook's verify command: ${c.command}`);
  }
}
