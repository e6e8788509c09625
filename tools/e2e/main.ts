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
import { Args, type Timings, UsageError, runMain, secondsSince, timed } from "../common";
import { exitOnSignals } from "../harness/proc";
import { cliEnv, pulumiStack } from "./clients/pulumi";
import type { Log, World } from "./context";
import { applyFixtures, setupVaultPki, writeVaultSecret } from "./fixtures";
import { type TryIt, checkTryIt, exportLines, prepareTry, tryScript } from "./try-it";
import { EXTRA_PARTS, type ExtraPart, runExtraAlone, runExtraAlongside } from "./scenarios/extra";
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

/** What `--keep` prints: the scenario's config copies, or (`--world-only`) what to try by hand. */
interface KeepNotes {
  readonly configFiles: string[];
  readonly tries: TryIt[];
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
  const notes: KeepNotes = { configFiles: [], tries: [] };
  try {
    // One PKI role for every stack (not only those of --stack), as the platform team would set it up.
    const roles = await setupVaultPki(
      { addr: world.vaultAddr, token: world.vaultToken },
      listStacks().map((s) => loadStackSettings(s)),
    );
    log(`e2e: Vault PKI ready (${[...roles.keys()].join(", ")}), its roles refuse any other name`);
    const parts = opts.worldOnly
      ? await prepareWorld(opts, tools, world, notes)
      : await runParts(opts, tools, world, notes);
    const after = stackFileHashes(opts.stacks);
    for (const [file, hash] of Object.entries(hashes)) {
      if (after[file] !== hash)
        throw new Error(`e2e: ${file} changed during the run; it must stay byte-identical`);
    }
    ok = true;
    const summary = parts.map(([name, s]) => `${name} ${s.toFixed(0)} s`).join(", ");
    log(
      `\ne2e: ${opts.worldOnly ? "world up, fixtures applied, Vault secrets written" : `passed (${summary})`}; total ${secondsSince(started)}`,
    );
  } catch (e) {
    log(`\ne2e: FAILED after ${secondsSince(started)}`);
    throw e;
  } finally {
    if (opts.keep) keepWorld(world, tools, ok, notes);
    else {
      await world.stop();
      log("e2e: world stopped");
    }
  }
  return 0;
}

/** `--world-only`: each stack's fixtures and Vault secret, and its folder to try the real CLI in. */
async function prepareWorld(
  opts: Options,
  tools: Toolchain,
  world: World,
  notes: KeepNotes,
): Promise<Timings> {
  for (const stack of opts.stacks) notes.tries.push(await readyToTry(tools, world, stack));
  return [];
}

/** A stack ready for the README's "Try it": its fixtures, its secret in Vault, its folder and commands. */
async function readyToTry(tools: Toolchain, world: World, stack: string): Promise<TryIt> {
  const s = loadStackSettings(stack);
  await applyFixtures(world.kubectl, s);
  await writeVaultSecret({ addr: world.vaultAddr, token: world.vaultToken }, s);
  return prepareTry(world, path.join(tools.cache, "bin"), stack, E2E_OVERRIDES);
}

/** A log whose every line carries `label`, for parts that run side by side. */
function labelled(label: string): Log {
  return (line) => log(line.replace(/^(\n*)/, `$1${label} `));
}

/**
 * The parts, as lanes side by side, each in namespaces of its own: each stack's scenario (the last one after
 * the README's "Try it" commands), and gitops then the maintenance render's drains (on a pool of fake nodes
 * of their own). Then, alone, the live stack of maintenance and ownership (its drains evict every pod on the
 * stacks' nodes, and it uses the prod namespace). Returns each part's seconds.
 */
async function runParts(opts: Options, tools: Toolchain, world: World, notes: KeepNotes): Promise<Timings> {
  const stacks = opts.only.has("scenario") ? opts.stacks : [];
  const extra = new Set(EXTRA_PARTS.filter((x: ExtraPart) => opts.only.has(x)));
  const parts: Timings = [];
  const report: [label: string, timings: Timings][] = [];
  const part = async (name: string, laneLog: Log, f: (timings: Timings) => Promise<void>) => {
    const t = Date.now();
    const timings: Timings = [];
    await f(timings);
    report.push([name, timings]);
    parts.push([name, (Date.now() - t) / 1000]);
    laneLog(`${name}: done in ${secondsSince(t)}`);
  };
  const alongside = new Set([...extra].filter((x) => x === "gitops" || x === "maintenance"));
  const beside = (laneLog: Log) =>
    part(
      [...alongside].join("+") + (alongside.has("maintenance") ? " (render)" : ""),
      laneLog,
      async (timings) => {
        const ctx = { world, tools, log: laneLog, overrides: E2E_OVERRIDES };
        timings.push(...(await runExtraAlongside(ctx, alongside)));
      },
    );
  const lanes: (() => Promise<void>)[] = stacks.map((stack, i) => async () => {
    const laneLog = stacks.length > 1 ? labelled(`${stack} |`) : log;
    if (i === stacks.length - 1) {
      await part(`try-it (${stack})`, laneLog, async (timings) => {
        await timed(
          `[${stack}] the README's Try it: stack init and preview as printed`,
          () => tryIt(tools, world, stack, laneLog),
          laneLog,
          timings,
        );
      });
    }
    await part(stack, laneLog, (timings) => runStack(tools, world, stack, laneLog, notes, timings));
  });
  if (alongside.size > 0) lanes.push(() => beside(lanes.length > 0 ? labelled("extra |") : log));
  const settled = await Promise.allSettled(lanes.map((lane) => lane()));
  const failed = settled.find((x): x is PromiseRejectedResult => x.status === "rejected");
  if (failed) throw failed.reason;
  const alone = new Set([...extra].filter((x) => x === "maintenance" || x === "ownership"));
  if (alone.size > 0) {
    await part(`${[...alone].join("+")} (live)`, log, async (timings) => {
      timings.push(...(await runExtraAlone({ world, tools, log, overrides: E2E_OVERRIDES }, alone)));
    });
  }
  log("\ne2e: where the time went");
  for (const [label, timings] of report) {
    log(`  ${label}`);
    logTimings(timings);
  }
  return parts;
}

/** One stack's runbook scenario, with the real CLI on a backend of this world. */
async function runStack(
  tools: Toolchain,
  world: World,
  stack: string,
  laneLog: Log,
  notes: KeepNotes,
  timings: Timings,
): Promise<void> {
  await applyFixtures(world.kubectl, loadStackSettings(stack));
  // A shell set up for this stack: its kubeconfig (its context current) and its Vault's address.
  const shell = world.shell(stack);
  const p = await pulumiStack({
    stack,
    pulumi: tools.bin("pulumi"),
    dir: world.dir,
    env: shell.env,
    log: laneLog,
  });
  const last = STEPS[STEPS.length - 1];
  notes.configFiles.push(
    `pulumi up --stack ${stack} --config-file ${p.configFile}   # back after step ${STEPS.length} ${last.name} (route direct)`,
  );
  for (const [k, v] of Object.entries({ ...E2E_OVERRIDES, ...shell.overrides })) await p.configSet(k, v);
  await runScenario({ world, stack, pulumi: p, log: laneLog }, timings);
}

/** The README's "Try it" on this world: the printed stack init and preview, run by bash as printed. */
async function tryIt(tools: Toolchain, world: World, stack: string, laneLog: Log): Promise<void> {
  await checkTryIt(await readyToTry(tools, world, stack), laneLog);
}

/** `--keep`: leaves the world running and prints how to reach it. */
function keepWorld(world: World, tools: Toolchain, ok: boolean, notes: KeepNotes): void {
  const kept = world.keep(STATE_FILE);
  log(`\ne2e: world kept running${ok ? "" : " (after a failure)"}; to explore it:`);
  log(`  export KUBECONFIG=${kept.kubeconfig}`);
  log(`  export VAULT_ADDR=${kept.vaultAddr} VAULT_TOKEN=${kept.vaultToken}`);
  if (notes.tries.length > 0) {
    log(`\nThe real CLI on it, from ${PROJECT_DIR} (each stack's secret is in Vault; README "Try it"):`);
    const [first, ...rest] = notes.tries;
    for (const line of tryScript(first, 0)) log(`  ${line}`);
    for (const t of [first, ...rest]) {
      log(`  # ${t.stack}`);
      for (const c of t.commands) log(`  ${c}`);
    }
  } else {
    const cli = cliEnv(path.join(kept.dir, "pulumi-state"), path.join(kept.dir, "pulumi-home"));
    for (const line of exportLines(cli)) log(`  ${line}`);
    log(`  export PATH="$PATH:${path.join(tools.cache, "bin")}"`);
    for (const line of notes.configFiles) log(`  ${line}`);
  }
  log(`stop it with: npm run e2e -- --down`);
}

if (require.main === module) runMain(USAGE, () => main(process.argv.slice(2)));
