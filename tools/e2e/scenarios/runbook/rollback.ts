/**
 * Step rollback: `backend.route direct` and `pulumi up` point the backend at PostgreSQL (with PgBouncer's own
 * sslmode and server CA in the outputs); then back again.
 */
import * as assert from "node:assert/strict";
import { type StackRun, backendRevision, expectRoute, pulumiUp } from "./stack-run";

export async function rollback(r: StackRun): Promise<void> {
  // Each route change rolls the backend once (and so did a port change before this step).
  const backendBefore = await backendRevision(r);
  await r.pulumi.configSet("backend.route", "direct");
  await pulumiUp(r);
  const out = await expectRoute(r, r.direct, "direct");
  // Direct, the backend verifies PostgreSQL as PgBouncer did: its sslmode, against its CA.
  assert.equal(out.sslMode, r.s.tls.serverSslMode, "stack output sslMode on the direct route");
  const ca = r.s.tls.serverCa;
  if (ca && ca.source !== "vault") {
    const kind = ca.source === "configmap" ? "ConfigMap" : "Secret";
    assert.deepEqual(out.caRef, { kind, name: ca.name, key: ca.key }, "stack output caRef (direct)");
  }
  assert.equal(await backendRevision(r), backendBefore + 1, "the rollback rolled the backend once");
  await r.pulumi.configSet("backend.route", "pgbouncer");
  await pulumiUp(r);
  await expectRoute(r, r.pooler, "pgbouncer");
  assert.equal(await backendRevision(r), backendBefore + 2, "and the way back once more");
}
