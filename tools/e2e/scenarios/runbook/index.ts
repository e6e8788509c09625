/**
 * The runbook scenario, per stack: the runbook's steps against the real engine, in this order. Each step
 * says what it checks where: on the API server through kubectl (never on Pulumi's own report), where kwok
 * stands in for the kubelet (it marks pods Running and Ready itself, mounts no volume, starts no container,
 * runs no preStop hook); on the real binaries, where the live objects run on the local fleet (the steps
 * from live-objects-serve to reload). A step's number is its place in `STEPS`; its name is the one the docs
 * use.
 */
import type { Timings } from "../../../common";
import type { ScenarioContext } from "../../context";
import { type Step, runSteps } from "../steps";
import { badInput } from "./bad-input";
import { RENEWAL_STACK, certificateRenewal } from "./certificate-renewal";
import { destroy } from "./destroy";
import { PORT_CHANGE_STACK, portRolls, reload, rotation } from "./in-place";
import { stopLiveFleet } from "./live-fleet";
import { liveObjectsServe } from "./live-objects-serve";
import { noChanges } from "./no-changes";
import { offlineRenderMatches } from "./offline-render-matches";
import { outputsMatchBackend } from "./outputs-match-backend";
import { poolerApiState } from "./pooler-api-state";
import { previewAndUp } from "./preview-and-up";
import { rollback } from "./rollback";
import { type StackRun, openStackRun } from "./stack-run";

export const STEPS: readonly Step<StackRun>[] = [
  {
    name: "preview-and-up",
    title: "pulumi preview, then pulumi up --refresh, with the policy pack (the runbook's commands)",
    run: previewAndUp,
  },
  {
    name: "pooler-api-state",
    title:
      "API state: the StatefulSet's controller reports every replica ready (kwok marks the pods), each " +
      "pod's name, hostname and subdomain, [peers] = the live pods' DNS names, the canary's endpoints, " +
      "restricted admission, PDB, NetworkPolicy, the certificate from OpenBao's PKI and its volume, " +
      "Service, PodMonitor, rules",
    run: poolerApiState,
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
    name: "live-objects-serve",
    title:
      "real binaries: the live ini, auth file, certificate and pod template on PgBouncer 1.25.2 and a " +
      "TLS-only PostgreSQL 15: every replica ready (server logins checked), each process the peer id of " +
      "its live pod, verify-full with the live CA, both logins, a cancel forwarded to the other replica",
    run: liveObjectsServe,
  },
  {
    name: "certificate-renewal",
    title:
      `the certificate made due (stack ${RENEWAL_STACK}): a plain pulumi up keeps it, pulumi up --refresh ` +
      "renews it in place (a watch sees no deletion), nothing rolls; the fleet serves the new one to new " +
      "connections; set back, no changes",
    run: certificateRenewal,
  },
  {
    name: "rotation",
    title:
      "the runbook's rotation: the idle login's password in PostgreSQL and Vault, pulumi up (the Secret " +
      "in place, nothing rolls), every process applies it while the login in use is served; app_current " +
      "moved, pulumi up: connectionUrl on the new login, the old one still served",
    run: rotation,
  },
  {
    name: "reload",
    title:
      "a pool size: the preview updates the ConfigMap only, pulumi up rolls nothing, SHOW CONFIG of every " +
      "process has it; and back",
    run: reload,
  },
  {
    name: "port-rolls",
    title: `pgbouncer.port (stack ${PORT_CHANGE_STACK}): the pods roll, one at a time, new uids; and back`,
    run: portRolls,
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
    title: "the offline render matches what the real run created, both ways",
    run: offlineRenderMatches,
  },
  {
    name: "destroy",
    title: "pulumi destroy: refused while the backend uses the pooler; after the rollback, the pooler goes",
    run: destroy,
  },
];

/** Runs `STEPS` on the stack of `ctx`; each step's seconds go to `timings`. The live fleet stops on any end. */
export async function runScenario(ctx: ScenarioContext, timings?: Timings): Promise<void> {
  const run = openStackRun(ctx);
  try {
    await runSteps(ctx.stack, STEPS, run, ctx.log, timings);
  } finally {
    await stopLiveFleet(run);
  }
}
