/**
 * `npm run e2e [-- --stack <s>]... [--only <parts>] [--keep] [--world-only]` and `npm run e2e -- --down`.
 *
 * The real Pulumi CLI and providers against a local kube-apiserver (with etcd, controller-manager, scheduler
 * and kwok's fake nodes) and OpenBao: the scenario of tools/e2e/scenario.ts for every stack, then the parts of
 * tools/e2e/extra.ts (GitOps renders, node maintenance, field ownership); `--only scenario,gitops,...`
 * picks some of them. `--keep` leaves
 * the world running and prints how to reach it; `--down` stops what `--keep` left.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_DIR, listStacks } from "../../stacks/stack-file";
import { exitOnSignals } from "../harness/proc";
import { EXTRA_PARTS, runExtra } from "./extra";
import { applyFixtures } from "./fixtures";
import { PASSPHRASE, pulumiStack } from "./pulumi";
import { runScenario } from "./scenario";
import { obtainToolchain } from "./toolchain";
import { startWorld } from "./world";
import { loadStackSettings } from "../../stacks/settings";

/** Where `--keep` records the world it leaves running. */
export const STATE_FILE =
  process.env.CLIPPER_E2E_STATE ?? path.join(os.tmpdir(), "clipper-pgbouncer-e2e-world.json");

/** Config overrides of the e2e run only (never in the stack files): Grafana cannot run here. */
export const E2E_OVERRIDES: Readonly<Record<string, string>> = { "monitoring.dashboard": "false" };

interface Args {
  readonly stacks: string[];
  readonly keep: boolean;
  readonly down: boolean;
  readonly worldOnly: boolean;
  /** `scenario` and the parts of extra.ts to run (all by default). */
  readonly only: ReadonlySet<string>;
}

const PARTS: readonly string[] = ["scenario", ...EXTRA_PARTS];

function parseArgs(argv: readonly string[]): Args {
  const stacks: string[] = [];
  let keep = false;
  let down = false;
  let worldOnly = false;
  let only = new Set(PARTS);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack" && argv[i + 1]) stacks.push(argv[++i]);
    else if (a === "--keep") keep = true;
    else if (a === "--down") down = true;
    else if (a === "--world-only") worldOnly = true;
    else if (a === "--only" && argv[i + 1] && argv[i + 1].split(",").every((x) => PARTS.includes(x)))
      only = new Set(argv[++i].split(","));
    else {
      console.error(
        `usage: npm run e2e -- [--stack <${listStacks().join("|")}>]... [--only <${PARTS.join(",")}>] ` +
          `[--keep] [--world-only] | --down`,
      );
      process.exit(2);
    }
  }
  return { stacks: stacks.length > 0 ? stacks : listStacks(), keep, down, worldOnly, only };
}

const log = (line: string) => console.log(line);
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(0)} s`;

function stackFileHashes(stacks: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    stacks.map((s) => {
      const file = path.join(PROJECT_DIR, `Pulumi.${s}.yaml`);
      return [file, crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex")];
    }),
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.down) {
    const { stopKept } = await import("./world");
    if (!(await stopKept(STATE_FILE, log))) log(`e2e: nothing to stop (no ${STATE_FILE})`);
    return;
  }
  if (fs.existsSync(STATE_FILE)) {
    throw new Error(
      `e2e: a kept world is still running (${STATE_FILE}); stop it first with npm run e2e -- --down`,
    );
  }
  exitOnSignals();
  const started = Date.now();
  const tools = await obtainToolchain();
  log(`e2e: toolchain ready in ${seconds(started)} (${tools.cache})`);
  const hashes = stackFileHashes(args.stacks);
  const world = await startWorld({ tools, log });
  let ok = false;
  const configFiles: string[] = [];
  try {
    const timings: string[] = [];
    for (const stack of args.only.has("scenario") ? args.stacks : []) {
      const t = Date.now();
      await applyFixtures(world.kubectl, loadStackSettings(stack));
      if (args.worldOnly) continue;
      const p = await pulumiStack({
        stack,
        pulumi: tools.bin("pulumi"),
        dir: world.dir,
        env: world.env,
        log,
      });
      configFiles.push(
        `pulumi up --stack ${stack} --config-file ${p.configFile}   # back after step 8 (route direct)`,
      );
      for (const [k, v] of Object.entries(E2E_OVERRIDES)) await p.configSet(k, v);
      await runScenario({ world, stack, pulumi: p, log });
      timings.push(`${stack} ${seconds(t)}`);
    }
    const extra = new Set(EXTRA_PARTS.filter((x) => args.only.has(x)));
    if (!args.worldOnly && extra.size > 0) {
      const t = Date.now();
      const parts = await runExtra({ world, tools, log, overrides: E2E_OVERRIDES }, extra);
      for (const [name, s] of parts) log(`  ${s.toFixed(1).padStart(6)} s  ${name}`);
      timings.push(`${[...extra].join("+")} ${seconds(t)}`);
    }
    const after = stackFileHashes(args.stacks);
    for (const [file, hash] of Object.entries(hashes)) {
      if (after[file] !== hash)
        throw new Error(`e2e: ${file} changed during the run; it must stay byte-identical`);
    }
    ok = true;
    log(
      `\ne2e: ${args.worldOnly ? "world up and fixtures applied" : `passed (${timings.join(", ")})`}; total ${seconds(started)}`,
    );
  } finally {
    if (args.keep) {
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
    } else {
      await world.stop();
      log("e2e: world stopped");
    }
  }
}

main().catch((err: unknown) => {
  console.error(`\ne2e FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
