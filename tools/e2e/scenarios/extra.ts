/**
 * The parts of the e2e run beyond the runbook scenario, by name (`npm run e2e -- --only <names>`):
 * - `gitops`: the renders applied one over the other (gitops/), no Pulumi;
 * - `maintenance`: node drains, on the render (no Pulumi) and on a real `pulumi up` (maintenance/);
 * - `ownership`: the runbook's field ownership sequence with the real engine (ownership/).
 * `maintenance` and `ownership` share one prod stack of their own (a backend folder apart from the
 * scenario's), brought up once.
 */
import * as path from "node:path";
import { loadStackSettings } from "../../../stacks/settings";
import { type Timings, timed } from "../../common";
import { type PulumiStack, pulumiStack } from "../clients/pulumi";
import type { ExtraContext } from "../context";
import { applyFixtures, writeVaultSecret } from "../fixtures";
import { runGitOps } from "./gitops";
import { runMaintenanceLive, runMaintenanceRender } from "./maintenance";
import {
  afterOurUp,
  clientSideDropDeletes,
  forcedAndRefresh,
  openBackendTeam,
  switchToServerSideKeeps,
  theirApply,
  theirReapplyConflicts,
  theyDropTheKeys,
  theyHandTheValuesOver,
} from "./ownership";

export const EXTRA_PARTS = ["gitops", "maintenance", "ownership"] as const;
export type ExtraPart = (typeof EXTRA_PARTS)[number];

const STACK = "prod";

/** Whether the run may cordon and drain nodes: only ever the fake nodes of a cluster it started. */
function mayDrain(ctx: ExtraContext, parts: Set<ExtraPart>): void {
  if (parts.has("maintenance") && !ctx.world.local.kube) {
    ctx.log(
      "\n[maintenance] skipped: it drains nodes, and this cluster is KUBECONFIG's, not the local kwok one",
    );
    parts.delete("maintenance");
  }
}

/**
 * What runs beside the scenarios: `gitops` (a namespace of its own, no drains), and the maintenance part's
 * render drains (their own namespaces, on the maintenance pool of fake nodes that no stack's pod uses).
 */
export async function runExtraAlongside(ctx: ExtraContext, wanted: ReadonlySet<ExtraPart>): Promise<Timings> {
  const parts = new Set(wanted);
  mayDrain(ctx, parts);
  const timings: Timings = [];
  if (parts.has("gitops")) timings.push(...(await runGitOps({ world: ctx.world, log: ctx.log })));
  if (parts.has("maintenance"))
    timings.push(...(await runMaintenanceRender({ world: ctx.world, log: ctx.log })));
  return timings;
}

/**
 * The live stack (`maintenance` and `ownership`), once nothing else runs: it uses the prod namespace, and
 * its drains evict every pod on the stacks' nodes.
 */
export async function runExtraAlone(ctx: ExtraContext, wanted: ReadonlySet<ExtraPart>): Promise<Timings> {
  const parts = new Set(wanted);
  mayDrain(ctx, parts);
  return parts.has("maintenance") || parts.has("ownership") ? runLive(ctx, parts) : [];
}

/** The live stack's parts: ownership 1-6, the maintenance drains on it, then ownership 7. */
async function runLive(ctx: ExtraContext, parts: ReadonlySet<ExtraPart>): Promise<Timings> {
  const timings: Timings = [];
  const { world, log } = ctx;
  const step = (name: string, f: () => Promise<void>) => timed(`[live] ${name}`, f, log, timings);
  const p = await liveStack(ctx);
  const up = async (extra: string[] = []) => {
    await p.ok(["up", "--yes", "--skip-preview", "--policy-pack", "policy", ...extra]);
  };
  const team = openBackendTeam({ world, log, s: loadStackSettings(STACK), up, outputs: () => p.outputs() });

  if (parts.has("ownership")) {
    await step("ownership 1-2: the backend team's apply, then our pulumi up", async () => {
      await theirApply(team);
      await up();
      await afterOurUp(team);
    });
    await step("ownership 3-5: their re-apply conflicts; drop the keys; hand them over", async () => {
      await theirReapplyConflicts(team);
      await theyDropTheKeys(team);
      await theyHandTheValuesOver(team);
    });
    await step("ownership 6: --force-conflicts, then pulumi up, then pulumi up --refresh", () =>
      forcedAndRefresh(team),
    );
  } else {
    await step("pulumi up --refresh", () => up(["--refresh"]));
  }
  if (parts.has("maintenance")) {
    timings.push(...(await runMaintenanceLive({ world, log, pulumi: p, up })));
  }
  if (parts.has("ownership")) {
    await step("ownership 7: a client-side team (drop client-side; switch to server-side)", async () => {
      await clientSideDropDeletes(team);
      await switchToServerSideKeeps(team);
    });
  }
  return timings;
}

/** The live stack's fixtures, its secret in Vault, and the stack in a backend folder of its own. */
async function liveStack(ctx: ExtraContext): Promise<PulumiStack> {
  const { world, log } = ctx;
  const s = loadStackSettings(STACK);
  await applyFixtures(world.kubectl, s);
  await writeVaultSecret({ addr: world.vaultAddr, token: world.vaultToken }, s);
  const shell = world.shell(STACK);
  const p = await pulumiStack({
    stack: STACK,
    pulumi: ctx.tools.bin("pulumi"),
    dir: path.join(world.dir, "extra"),
    env: shell.env,
    log,
  });
  for (const [k, v] of Object.entries({ ...ctx.overrides, ...shell.overrides })) await p.configSet(k, v);
  return p;
}
