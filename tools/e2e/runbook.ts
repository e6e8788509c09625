/**
 * The runbook's "Verify" commands, as the e2e runs them: read from docs/runbook.md, moved from prod to the
 * stack under test, each with the value its `# comment` promises.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { StackSettings } from "../../stacks/settings";
import { PROJECT_DIR } from "../../stacks/stack-file";
import { loadStackSettings } from "../../stacks/settings";

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
