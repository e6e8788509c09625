/**
 * Step destroy: `pulumi destroy` is refused while the backend uses the pooler (nothing deleted); after the
 * rollback it removes every object of the pooler and leaves the backend on PostgreSQL with its own keys.
 * Then, by hand, why the patch has retainOnDelete: what deleting it would have done to the backend.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { FIELD_MANAGER } from "../../../../components/backend-route";
import { PROJECT_DIR } from "../../../../stacks/stack-file";
import { list } from "../../clients/kubectl";
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
  const refused = await p.run(["destroy", "--yes", "--skip-preview"]);
  assert.notEqual(refused.code, 0, "destroy must be refused while backend.route is pgbouncer");
  expectRunbookAnswers(refused.output);
  assert.deepEqual(await snapshot(r), steady, "a refused destroy deletes nothing");
  // The other way around the protection: everything but the protected patches, and what they depend on.
  await p.ok(["destroy", "--yes", "--skip-preview", "--exclude-protected"]);
  assert.deepEqual(
    await snapshot(r),
    steady,
    "destroy --exclude-protected deletes nothing: every pooler object is a dependency of a protected patch",
  );
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

/** Pulumi's words for a protected resource, as the runbook must quote them (the URN aside). */
export const PROTECTED_MESSAGE =
  /error: (.*) cannot be deleted because it is protected\. (.*)\n\s*`pulumi state unprotect '(urn:[^']+)'`/;

/**
 * The refused destroy's message is Pulumi's, and it suggests `pulumi state unprotect`: the runbook must
 * quote it, so that a search of what the user sees leads to the Decommission section (roll back first).
 */
function expectRunbookAnswers(output: string): void {
  const m = PROTECTED_MESSAGE.exec(output);
  assert.ok(m, `destroy says the patch is protected, in Pulumi's words:\n${tail(output)}`);
  const [, , advice, urn] = m;
  assert.match(urn, /DeploymentPatch::|ConfigMapPatch::/, "the protected resource is a backend patch");
  const runbook = fs.readFileSync(path.join(PROJECT_DIR, "docs", "runbook.md"), "utf8");
  const section = runbook.slice(runbook.indexOf("## Decommission"));
  for (const words of [
    "cannot be deleted because it is protected",
    advice.trim(),
    "pulumi state unprotect",
  ]) {
    assert.ok(section.includes(words), `docs/runbook.md's Decommission quotes Pulumi's "${words}"`);
  }
}

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
