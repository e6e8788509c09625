/**
 * Step outputs-match-backend: the stack outputs equal what the backend's ConfigMap holds (the pooler's
 * Service) and the TLS it verifies the pooler with (sslMode, caRef, caBundle: OpenBao's root), the backend rolled once, the ConfigMap's keys are owned as the runbook says (the pooler's two,
 * the rest the backend team's), and every Verify command of the runbook prints what it promises.
 */
import * as assert from "node:assert/strict";
import { FIELD_MANAGER } from "../../../../components/backend-route";
import { getJson } from "../../clients/kubectl";
import { BACKEND_FIELD_MANAGER } from "../../fixtures";
import { type StackRun, backendRevision, expectRoute, measuredBy } from "./stack-run";
import { expectBackendTlsOutputs, pkiMount } from "./tls";
import { runVerifyCommands } from "./verify-commands";

export async function outputsMatchBackend(r: StackRun): Promise<void> {
  const { s, pooler } = r;
  const out = await expectRoute(r, pooler, "pgbouncer");
  if (pkiMount(r) !== undefined) await expectBackendTlsOutputs(r, out);
  assert.match(
    String(out.connectionUrl),
    new RegExp(`@${escapeRegExp(pooler.host)}:${pooler.port}/${s.database.name}$`),
  );
  const before = measuredBy(r.measured.backendRevision, "preview-and-up");
  assert.equal(await backendRevision(r), before + 1, "the backend rolled exactly once");
  await expectOwnership(r);
  await runVerifyCommands(r);
}

/** Who owns what in the backend's ConfigMap: the pooler's two keys, the rest the backend team's. */
async function expectOwnership(r: StackRun): Promise<void> {
  const { s } = r;
  const cm = await getJson(r.k, ["configmap", s.backend.configMapName, "-n", r.bns, "--show-managed-fields"]);
  const owned = (manager: string) =>
    (cm.metadata.managedFields ?? [])
      .filter((m) => m.manager === manager)
      .flatMap((m) => Object.keys((m.fieldsV1 as Record<string, Record<string, unknown>>)["f:data"] ?? {}))
      .map((f) => f.replace(/^f:/, ""))
      .sort();
  assert.deepEqual(owned(FIELD_MANAGER), [s.backend.hostKey, s.backend.portKey].sort());
  assert.ok(owned(BACKEND_FIELD_MANAGER).includes("LOG_LEVEL"), "the backend team keeps its own keys");
  assert.ok(!owned(BACKEND_FIELD_MANAGER).includes(s.backend.hostKey), "the pooler took DB_HOST over");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
