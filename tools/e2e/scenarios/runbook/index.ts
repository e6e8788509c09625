/**
 * The runbook scenario, per stack: the runbook's steps against the real engine, in this order, each
 * asserted on the cluster through kubectl (never on Pulumi's own report). A step's number is its place in
 * `STEPS`; its name is the one the docs use.
 */
import type { Timings } from "../../../common";
import type { ScenarioContext } from "../../context";
import { type Step, runSteps } from "../steps";
import { badInput } from "./bad-input";
import { RENEWAL_STACK, certificateRenewal } from "./certificate-renewal";
import { destroy } from "./destroy";
import { noChanges } from "./no-changes";
import { offlineRenderMatches } from "./offline-render-matches";
import { outputsMatchBackend } from "./outputs-match-backend";
import { poolerServing } from "./pooler-serving";
import { previewAndUp } from "./preview-and-up";
import { rollback } from "./rollback";
import { rotation } from "./rotation";
import { type StackRun, openStackRun } from "./stack-run";

export const STEPS: readonly Step<StackRun>[] = [
  {
    name: "preview-and-up",
    title: "pulumi preview, then pulumi up, with the policy pack",
    run: previewAndUp,
  },
  {
    name: "pooler-serving",
    title:
      "the pooler runs: Deployment, pods under restricted, PDB, NetworkPolicy with egress, the certificate " +
      "from OpenBao's PKI and its volume, Service, PodMonitor, rules",
    run: poolerServing,
  },
  {
    name: "outputs-match-backend",
    title:
      "stack outputs equal what the backend's ConfigMap holds; the backend rolled once; the runbook's Verify",
    run: outputsMatchBackend,
  },
  {
    name: "no-changes",
    title: "a second preview has no changes",
    run: noChanges,
  },
  {
    name: "certificate-renewal",
    title:
      `the certificate made due, pulumi up (stack ${RENEWAL_STACK}): a new one in the same Secret, updated ` +
      "in place (a watch sees no deletion), no new ReplicaSet, nothing replaced; set back, no changes",
    run: certificateRenewal,
  },
  {
    name: "rotation",
    title:
      "a new password in Vault, pulumi up: a new Secret and ReplicaSet, nothing else replaced; " +
      "the new Secret serves a real PgBouncer, stale passwords first; a new ini rolls the pods too",
    run: rotation,
  },
  {
    name: "rollback",
    title: "backend.route direct, pulumi up; then back to pgbouncer",
    run: rollback,
  },
  {
    name: "bad-input",
    title:
      "the Vault secret deleted, Vault unreachable, an impossible pool budget, the other stack's shell, " +
      "objects the stack names missing, a rename while routed; nothing changes",
    run: badInput,
  },
  {
    name: "offline-render-matches",
    title: "the offline render matches what the real run created",
    run: offlineRenderMatches,
  },
  {
    name: "destroy",
    title: "pulumi destroy: refused while the backend uses the pooler; after the rollback, the pooler goes",
    run: destroy,
  },
];

/** Runs `STEPS` on the stack of `ctx`; each step's seconds go to `timings`. */
export async function runScenario(ctx: ScenarioContext, timings?: Timings): Promise<void> {
  await runSteps(ctx.stack, STEPS, openStackRun(ctx), ctx.log, timings);
}
