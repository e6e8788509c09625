/**
 * The parts of the e2e run beyond the runbook scenario, by name (`npm run e2e -- --only <names>`):
 * - `gitops`: issue 12's renders applied one over the other (gitops.ts), no Pulumi;
 * - `maintenance`: issue 11's drains, on the render (no Pulumi) and on a real `pulumi up` (maintenance.ts);
 * - `ownership`: issue 12's field ownership sequence with the real engine (ownership.ts).
 * `maintenance` and `ownership` share one prod stack of their own (a backend folder apart from the
 * scenario's), brought up once.
 */
import * as path from "node:path";
import { applyFixtures, writeVaultSecret } from "./fixtures";
import { runGitOps } from "./gitops";
import { type Timings, runMaintenanceLive, runMaintenanceRender } from "./maintenance";
import { ownership } from "./ownership";
import { pulumiStack } from "./pulumi";
import type { Toolchain } from "./toolchain";
import type { World } from "./world";
import { loadStackSettings } from "../../stacks/settings";

export const EXTRA_PARTS = ["gitops", "maintenance", "ownership"] as const;
export type ExtraPart = (typeof EXTRA_PARTS)[number];

export interface ExtraContext {
  readonly world: World;
  readonly tools: Toolchain;
  readonly log: (line: string) => void;
  /** Config overrides of every e2e stack (main.ts's E2E_OVERRIDES). */
  readonly overrides: Readonly<Record<string, string>>;
}

const STACK = "prod";

export async function runExtra(ctx: ExtraContext, wanted: ReadonlySet<ExtraPart>): Promise<Timings> {
  const timings: Timings = [];
  const { world, log } = ctx;
  const parts = new Set(wanted);
  if (parts.has("maintenance") && !world.local.kube) {
    // It cordons and drains nodes: only ever the fake nodes of a cluster this run started.
    log("\n[maintenance] skipped: it drains nodes, and this cluster is KUBECONFIG's, not the local kwok one");
    parts.delete("maintenance");
  }
  if (parts.has("gitops")) timings.push(...(await runGitOps({ world, log })));
  if (parts.has("maintenance")) timings.push(...(await runMaintenanceRender({ world, log })));
  if (!parts.has("maintenance") && !parts.has("ownership")) return timings;

  const s = loadStackSettings(STACK);
  const timed = async (name: string, f: () => Promise<void>) => {
    const t = Date.now();
    log(`\n[live] ${name}`);
    await f();
    timings.push([name, (Date.now() - t) / 1000]);
    log(`[live] ${name}: passed in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  };
  await applyFixtures(world.kubectl, s);
  await writeVaultSecret({ addr: world.vaultAddr, token: world.vaultToken }, s, 1);
  const p = await pulumiStack({
    stack: STACK,
    pulumi: ctx.tools.bin("pulumi"),
    dir: path.join(world.dir, "extra"),
    env: world.env,
    log,
  });
  for (const [k, v] of Object.entries(ctx.overrides)) await p.configSet(k, v);
  const up = async (extra: string[] = []) => {
    await p.ok(["up", "--yes", "--skip-preview", "--policy-pack", "policy", ...extra]);
  };
  const own = ownership({ world, s, log, up, outputs: () => p.outputs() });

  if (parts.has("ownership")) {
    await timed("ownership 1-2: the backend team's apply, then our pulumi up", async () => {
      await own.theirApply();
      await up();
      await own.afterOurUp();
    });
    await timed("ownership 3-5: their re-apply conflicts; drop the keys; hand them over", own.recipes);
    await timed(
      "ownership 6: --force-conflicts, then pulumi up, then pulumi up --refresh",
      own.forcedAndRefresh,
    );
  } else {
    await timed("pulumi up", () => up());
  }
  if (parts.has("maintenance")) {
    timings.push(...(await runMaintenanceLive({ world, log, pulumi: p, up })));
  }
  if (parts.has("ownership")) {
    await timed("ownership 7: a client-side team (drop client-side; switch to server-side)", own.clientSide);
  }
  return timings;
}
