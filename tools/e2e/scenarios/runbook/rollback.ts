/** Step rollback: `backend.route direct` and `pulumi up` point the backend at PostgreSQL; then back again. */
import * as assert from "node:assert/strict";
import { type StackRun, backendRevision, expectRoute, measuredBy, pulumiUp } from "./stack-run";

export async function rollback(r: StackRun): Promise<void> {
  const backendBefore = measuredBy(r.measured.backendRevision, "preview-and-up");
  await r.pulumi.configSet("backend.route", "direct");
  await pulumiUp(r);
  await expectRoute(r, r.direct, "direct");
  assert.equal(await backendRevision(r), backendBefore + 2);
  await r.pulumi.configSet("backend.route", "pgbouncer");
  await pulumiUp(r);
  await expectRoute(r, r.pooler, "pgbouncer");
  assert.equal(await backendRevision(r), backendBefore + 3);
}
