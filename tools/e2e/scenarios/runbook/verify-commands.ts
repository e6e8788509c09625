/**
 * The runbook's "Verify" section, as the e2e runs it: every ```sh block of it, read from docs/runbook.md and
 * moved from prod to the stack under test, is either run by bash in the project folder as a person would
 * (each line, checked against the value its `# comment` promises), run on the live fleet with only the
 * port-forward replaced by the replica it would reach, or listed here with why it cannot run
 * ({@link VERIFY_BLOCKS}; a block of the runbook that none names fails the e2e's unit tests).
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

/** What the e2e does with a block of the Verify section, which it knows by its first line's beginning. */
export interface VerifyBlock {
  readonly startsWith: string;
  /**
   * `each`: every line runs against the API server and the stack, after the first `pulumi up`.
   * `fleet`: the port-forward line is replaced by the live fleet's replica it would reach (its local port),
   * every other line runs as printed (live-objects-serve). `not`: it cannot run here, for `why`.
   */
  readonly runs: "each" | "fleet" | "not";
  readonly why?: string;
}

export const VERIFY_BLOCKS: readonly VerifyBlock[] = [
  { startsWith: "kubectl -n clipper rollout status statefulset/pgbouncer", runs: "each" },
  { startsWith: "kubectl -n clipper port-forward pod/pgbouncer-0 16432:6432 &", runs: "fleet" },
  {
    startsWith: "kubectl -n clipper port-forward svc/pgbouncer 19127:9127 &",
    runs: "not",
    why:
      "no exporter runs here: kwok starts no container, and the live fleet runs the PgBouncer containers " +
      "only; the exporter's metric names, alerts and dashboard queries are npm test's (promtool, the " +
      "exporter's own names)",
  },
  {
    startsWith: "npm run validate -- --stack prod --cluster",
    runs: "not",
    why:
      "it port-forwards to the Service's pods, which needs a kubelet and running containers (kwok has " +
      "neither); npm test runs the same load validation on the local PgBouncer",
  },
];

/** The runbook's Verify block is written for prod. */
const RUNBOOK_STACK = "prod";

/** The ```sh blocks of the runbook's Verify section (up to its next `## `), as written. */
export function verifyBlocks(): string[] {
  const runbook = fs.readFileSync(path.join(PROJECT_DIR, "docs", "runbook.md"), "utf8");
  const section = runbook.split("\n## Verify\n")[1]?.split("\n## ")[0] ?? "";
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].trim());
  if (blocks.length === 0) throw new Error("docs/runbook.md has no ```sh block under ## Verify");
  return blocks;
}

/** The block the e2e knows `text` as; fails on a block none of {@link VERIFY_BLOCKS} names. */
export function classify(text: string): VerifyBlock {
  const found = VERIFY_BLOCKS.filter((b) => text.startsWith(b.startsWith));
  if (found.length !== 1) {
    throw new Error(
      `the runbook's Verify block beginning "${text.split("\n")[0]}" is none the e2e knows: add it to ` +
        "VERIFY_BLOCKS (tools/e2e/scenarios/runbook/verify-commands.ts), run or with why not",
    );
  }
  return found[0];
}

/** A runbook line for prod, moved to the stack under test. */
function mover(stack: string, s: StackSettings): (text: string) => string {
  const prod = loadStackSettings(RUNBOOK_STACK);
  return (text) =>
    text
      .replaceAll(`-n ${prod.namespace} `, `-n ${s.namespace} `)
      .replaceAll(`--stack ${RUNBOOK_STACK} `, `--stack ${stack} `)
      .replaceAll(`.${prod.namespace}.svc`, `.${s.namespace}.svc`)
      .replaceAll(` ${prod.credentials.vaultPath})`, ` ${s.credentials.vaultPath})`);
}

/** The lines of the blocks that run each line, moved to `stack`, with what each promises. */
export function verifyCommands(stack: string, s: StackSettings): VerifyCommand[] {
  const move = mover(stack, s);
  return verifyBlocks()
    .filter((b) => classify(b).runs === "each")
    .flatMap((b) => b.split("\n"))
    .map((line) => {
      const m = /^(.*?)\s+#\s+(.*)$/.exec(line);
      return m ? { command: move(m[1].trim()), expect: move(m[2].trim()) } : { command: move(line.trim()) };
    });
}

/** Runs each line of the `each` blocks with the stack's environment; each must print what it promises. */
export async function runVerifyCommands(r: StackRun): Promise<void> {
  for (const b of VERIFY_BLOCKS.filter((x) => x.runs === "not")) {
    r.log(`  runbook Verify, not run here: ${b.startsWith} ...: ${b.why}`);
  }
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

/**
 * The `fleet` blocks, moved to `stack`, for a replica reachable at 127.0.0.1:`port`: the port-forward line
 * dropped, its local port replaced by `port` wherever the block names it; fails when a block has no
 * port-forward to replace.
 */
export function fleetVerifyScripts(stack: string, s: StackSettings, port: number): string[] {
  const move = mover(stack, s);
  return verifyBlocks()
    .filter((b) => classify(b).runs === "fleet")
    .map((b) => {
      const [first, ...rest] = b.split("\n");
      const fwd = /^kubectl -n \S+ port-forward \S+ (\d+):\d+ &$/.exec(first);
      if (!fwd) throw new Error(`the Verify block's first line is no port-forward: ${first}`);
      const body = rest.join("\n");
      if (!body.includes(`port=${fwd[1]}`)) throw new Error(`the Verify block never uses port ${fwd[1]}`);
      return move(body.replaceAll(`port=${fwd[1]}`, `port=${port}`));
    });
}
