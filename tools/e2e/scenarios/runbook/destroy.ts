/**
 * Step destroy: `pulumi destroy` is refused while the backend uses the pooler (nothing deleted); after the
 * rollback it removes every object of the pooler and leaves the backend on PostgreSQL with its own keys.
 * Then, by hand, why the patch has retainOnDelete: what deleting it would have done to the backend.
 */
import * as assert from "node:assert/strict";
import {
  DESTROY_GUARD_HOOK,
  DESTROY_GUARD_MESSAGE,
  FIELD_MANAGER,
} from "../../../../components/backend-route";
import { list, waitFor } from "../../clients/kubectl";
import { applyBackend } from "../../fixtures";
import {
  POOLER_SELECTOR,
  type StackRun,
  backendConfig,
  expectAvailable,
  measuredBy,
  pulumiUp,
  snapshot,
  tail,
} from "./stack-run";

/** Objects of the pooler that `destroy` must remove. */
const POOLER_KINDS = [
  "statefulsets.apps",
  "deployments.apps",
  "services",
  "poddisruptionbudgets.policy",
  "networkpolicies.networking.k8s.io",
  "podmonitors.monitoring.coreos.com",
  "prometheusrules.monitoring.coreos.com",
];

export async function destroy(r: StackRun): Promise<void> {
  const { k, ns, s, pulumi: p } = r;
  const steady = measuredBy(r.measured.steady, "bad-input");
  // A plain destroy runs no program: the engine refuses a stack with delete hooks, naming the guard.
  const refused = await p.run(["destroy", "--yes", "--skip-preview"]);
  assert.notEqual(refused.code, 0, "destroy must be refused while backend.route is pgbouncer");
  for (const words of REFUSED_DESTROY_WORDS) {
    assert.ok(refused.output.includes(words), `destroy says "${words}":\n${tail(refused.output)}`);
  }
  assert.deepEqual(await snapshot(r), steady, "a refused destroy deletes nothing");
  // With the program running, the guard itself refuses, in the program's words.
  const guarded = await p.run(["destroy", "--yes", "--skip-preview", "--run-program"]);
  assert.notEqual(guarded.code, 0, "destroy --run-program must be refused while backend.route is pgbouncer");
  const said = `before hook "${DESTROY_GUARD_HOOK}" failed: ${DESTROY_GUARD_MESSAGE}`;
  assert.ok(guarded.output.includes(said), `destroy --run-program says ${said}:\n${tail(guarded.output)}`);
  assert.deepEqual(await snapshot(r), steady, "a refused destroy --run-program deletes nothing");
  // The way around the protection deletes nothing either.
  const excluded = await p.run(["destroy", "--yes", "--skip-preview", "--exclude-protected"]);
  r.log(`  destroy --exclude-protected exited ${excluded.code}`);
  assert.deepEqual(await snapshot(r), steady, "destroy --exclude-protected deletes nothing");
  await p.configSet("backend.route", "direct");
  await pulumiUp(r);
  await p.ok(["destroy", "--yes", "--skip-preview"]);
  for (const kind of POOLER_KINDS) {
    const left = (await list(k, kind, ns)).filter((o) => o.metadata.name !== s.backend.deploymentName);
    assert.deepEqual(
      left.map((o) => o.metadata.name),
      [],
      `no ${kind} of the pooler after destroy`,
    );
  }
  assert.deepEqual(
    (await list(k, "configmaps,secrets", ns, POOLER_SELECTOR)).map((o) => o.metadata.name),
    [],
  );
  // The StatefulSet's pods go with it (the garbage collector deletes them; kwok, 1 to 2 s later, removes them).
  await waitFor("the pooler's pods to be gone", async () =>
    (await list(k, "pods", ns, POOLER_SELECTOR)).length === 0 ? true : undefined,
  );
  const data = await backendConfig(r);
  assert.equal(
    data[s.backend.hostKey],
    r.direct.host,
    "after destroy the backend still points at PostgreSQL",
  );
  assert.equal(data[s.backend.portKey], String(r.direct.port));
  assert.equal(data.LOG_LEVEL, "info", "the backend team's own keys are untouched");
  await expectAvailable(r, r.bns, s.backend.deploymentName, 1);
  await patchDeleteWithoutRetain(r);
}

/**
 * What a refused `pulumi destroy` prints while the route is `pgbouncer` (Pulumi CLI 3.248.0,
 * pkg/engine/destroy.go): the runbook's Decommission quotes these lines (tools/test/unit/e2e-plan.test.ts).
 */
export const REFUSED_DESTROY_WORDS = [
  `Resource has delete hooks registered, but the program is not running. Hooks: ${DESTROY_GUARD_HOOK}`,
  "You must run with the `--run-program` flag to use delete hooks during destroy.",
];

/**
 * Pulumi's own message for a protected resource (3.248.0, pkg/resource/deploy/step.go), which a stack last
 * updated before the guard hook still prints, and which suggests `pulumi state unprotect`: the runbook quotes
 * it and says why not.
 */
export const PROTECTED_WORDS = [
  "cannot be deleted\nbecause it is protected. To unprotect the resource, either remove the `protect` flag " +
    "from the resource in your Pulumi program and run `pulumi up`, or use the command:",
  "`pulumi state unprotect",
];

/**
 * Why retainOnDelete: what the provider does to delete a Patch (4.25.0 `ssa.Relinquish`: an apply of the
 * bare identity under the patch's field manager), done by hand on the real API server. The keys the pooler
 * took over (forceConflicts) have no other manager left, so the API server drops them; the backend team's
 * apply restores them.
 */
async function patchDeleteWithoutRetain(r: StackRun): Promise<void> {
  const { s } = r;
  const identity = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: s.backend.configMapName, namespace: r.bns },
  };
  await r.k(["apply", "--server-side", `--field-manager=${FIELD_MANAGER}`, "-f", "-"], {
    input: JSON.stringify(identity),
  });
  const relinquished = await backendConfig(r);
  assert.ok(!(s.backend.hostKey in relinquished), `a released patch removes ${s.backend.hostKey} altogether`);
  assert.ok(!(s.backend.portKey in relinquished), `a released patch removes ${s.backend.portKey} altogether`);
  assert.equal(relinquished.LOG_LEVEL, "info");
  r.log(
    `  a patch delete without retainOnDelete would leave ${Object.keys(relinquished).sort().join(", ")} only`,
  );
  await applyBackend(r.k, s);
  assert.equal(
    (await backendConfig(r))[s.backend.hostKey],
    r.direct.host,
    "the backend team's apply restores it",
  );
}
