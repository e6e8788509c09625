/**
 * `npm run e2e [-- --stack <s>]... [--only <parts>] [--keep] [--world-only]` and `npm run e2e -- --down`.
 *
 * The real Pulumi CLI and providers against a local kube-apiserver (with etcd, controller-manager, scheduler
 * and kwok's fake nodes) and OpenBao: the runbook scenario (scenarios/runbook/) for every stack, then the
 * parts of scenarios/extra.ts (GitOps renders, node maintenance, field ownership); `--only
 * scenario,gitops,...` picks some of them. `--keep` leaves the world running and prints how to reach it;
 * `--down` stops what `--keep` left.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadStackSettings } from "../../stacks/settings";
import { PROJECT_DIR, listStacks } from "../../stacks/stack-file";
import { Args, type Timings, UsageError, runMain, secondsSince } from "../common";
import { exitOnSignals } from "../harness/proc";
import { PASSPHRASE, pulumiStack } from "./clients/pulumi";
import type { Log, World } from "./context";
import { applyFixtures } from "./fixtures";
import { EXTRA_PARTS, type ExtraPart, runExtra } from "./scenarios/extra";
import { STEPS, runScenario } from "./scenarios/runbook";
import { type Toolchain, obtainToolchain } from "./toolchain/toolchain";
import { startWorld, stopKept } from "./world";

/** Where `--keep` records the world it leaves running. */
export const STATE_FILE =
  process.env.CLIPPER_E2E_STATE ?? path.join(os.tmpdir(), "clipper-pgbouncer-e2e-world.json");

/** Config overrides of the e2e run only (never in the stack files): Grafana cannot run here. */
export const E2E_OVERRIDES: Readonly<Record<string, string>> = { "monitoring.dashboard": "false" };

const PARTS: readonly string[] = ["scenario", ...EXTRA_PARTS];

const USAGE =
  `usage: npm run e2e -- [--stack <${listStacks().join("|")}>]... [--only <${PARTS.join(",")}>] ` +
  `[--keep] [--world-only] | --down`;

interface Options {
  readonly stacks: string[];
  readonly keep: boolean;
  readonly down: boolean;
  readonly worldOnly: boolean;
  /** `scenario` and the parts of extra.ts to run (all by default). */
  readonly only: ReadonlySet<string>;
}

function parseArgs(argv: readonly string[]): Options {
  const args = new Args(argv);
  const known = listStacks();
  const stacks = args.all("stack");
  for (const s of stacks) {
    if (!known.includes(s)) throw new UsageError(`--stack is "${s}"; must be one of ${known.join(", ")}`);
  }
  const only = args.optional("only")?.split(",") ?? PARTS;
  for (const p of only) {
    if (!PARTS.includes(p)) throw new UsageError(`--only names "${p}"; the parts are ${PARTS.join(", ")}`);
  }
  const options = {
    stacks: stacks.length > 0 ? stacks : known,
    keep: args.flag("keep"),
    down: args.flag("down"),
    worldOnly: args.flag("world-only"),
    only: new Set(only),
  };
  args.done();
  return options;
}

const log: Log = (line) => console.log(line);

function stackFileHashes(stacks: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    stacks.map((s) => {
      const file = path.join(PROJECT_DIR, `Pulumi.${s}.yaml`);
      return [file, crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex")];
    }),
  );
}

function logTimings(timings: Timings): void {
  for (const [name, s] of timings) log(`  ${s.toFixed(1).padStart(6)} s  ${name}`);
}

async function main(argv: readonly string[]): Promise<number> {
  const opts = parseArgs(argv);
  if (opts.down) {
    if (!(await stopKept(STATE_FILE, log))) log(`e2e: nothing to stop (no ${STATE_FILE})`);
    return 0;
  }
  if (fs.existsSync(STATE_FILE)) {
    throw new Error(
      `e2e: a kept world is still running (${STATE_FILE}); stop it first with npm run e2e -- --down`,
    );
  }
  exitOnSignals();
  const started = Date.now();
  const tools = await obtainToolchain();
  log(`e2e: toolchain ready in ${secondsSince(started)} (${tools.cache})`);
  const hashes = stackFileHashes(opts.stacks);
  const world = await startWorld({ tools, log });
  let ok = false;
  const configFiles: string[] = [];
  try {
    const parts = await runParts(opts, tools, world, configFiles);
    const after = stackFileHashes(opts.stacks);
    for (const [file, hash] of Object.entries(hashes)) {
      if (after[file] !== hash)
        throw new Error(`e2e: ${file} changed during the run; it must stay byte-identical`);
    }
    ok = true;
    const summary = parts.map(([name, s]) => `${name} ${s.toFixed(0)} s`).join(", ");
    log(
      `\ne2e: ${opts.worldOnly ? "world up and fixtures applied" : `passed (${summary})`}; total ${secondsSince(started)}`,
    );
  } catch (e) {
    log(`\ne2e: FAILED after ${secondsSince(started)}`);
    throw e;
  } finally {
    if (opts.keep) keepWorld(world, tools, ok, configFiles);
    else {
      await world.stop();
      log("e2e: world stopped");
    }
  }
  return 0;
}

/** The scenario of each stack, then the extra parts; returns each one's seconds (a stack, the extras). */
async function runParts(
  opts: Options,
  tools: Toolchain,
  world: World,
  configFiles: string[],
): Promise<Timings> {
  const parts: Timings = [];
  for (const stack of opts.only.has("scenario") ? opts.stacks : []) {
    const t = Date.now();
    await applyFixtures(world.kubectl, loadStackSettings(stack));
    if (opts.worldOnly) continue;
    const p = await pulumiStack({ stack, pulumi: tools.bin("pulumi"), dir: world.dir, env: world.env, log });
    const last = STEPS[STEPS.length - 1];
    configFiles.push(
      `pulumi up --stack ${stack} --config-file ${p.configFile}   # back after step ${STEPS.length} ${last.name} (route direct)`,
    );
    for (const [k, v] of Object.entries(E2E_OVERRIDES)) await p.configSet(k, v);
    const steps: Timings = [];
    await runScenario({ world, stack, pulumi: p, log }, steps);
    logTimings(steps);
    parts.push([stack, (Date.now() - t) / 1000]);
  }
  const extra = new Set(EXTRA_PARTS.filter((x: ExtraPart) => opts.only.has(x)));
  if (!opts.worldOnly && extra.size > 0) {
    const t = Date.now();
    const timings = await runExtra({ world, tools, log, overrides: E2E_OVERRIDES }, extra);
    logTimings(timings);
    parts.push([[...extra].join("+"), (Date.now() - t) / 1000]);
  }
  return parts;
}

/** `--keep`: leaves the world running and prints how to reach it. */
function keepWorld(world: World, tools: Toolchain, ok: boolean, configFiles: readonly string[]): void {
  const kept = world.keep(STATE_FILE);
  log(`\ne2e: world kept running${ok ? "" : " (after a failure)"}; to explore it:`);
  log(`  export KUBECONFIG=${kept.kubeconfig}`);
  log(`  export VAULT_ADDR=${kept.vaultAddr} VAULT_TOKEN=${kept.vaultToken}`);
  log(
    `  export PULUMI_BACKEND_URL=file://${path.join(kept.dir, "pulumi-state")} PULUMI_CONFIG_PASSPHRASE=${PASSPHRASE}`,
  );
  log(`  export PATH="$PATH:${path.join(tools.cache, "bin")}"`);
  for (const line of configFiles) log(`  ${line}`);
  log(`stop it with: npm run e2e -- --down`);
}

if (require.main === module) runMain(USAGE, () => main(process.argv.slice(2)));
