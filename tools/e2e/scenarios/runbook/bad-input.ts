/**
 * Step bad-input: the Vault secret deleted, then an impossible pool budget; `pulumi preview` fails naming
 * the mount, path and keys, or the budget's sum, and nothing in the cluster changes. The snapshot taken
 * first is the steady state the destroy step compares with.
 */
import * as assert from "node:assert/strict";
import { ROLLING_SURGE, settingsPoolBudget } from "../../../../components/pgbouncer";
import type { StackSettings } from "../../../../stacks/settings";
import { kvDelete } from "../../clients/vault";
import { writeVaultSecret } from "../../fixtures";
import { type Snapshot, type StackRun, snapshot, tail } from "./stack-run";

export async function badInput(r: StackRun): Promise<void> {
  r.measured.steady = await snapshot(r);
  await secretDeleted(r, r.measured.steady);
  await impossibleBudget(r, r.measured.steady);
  await r.pulumi.ok(["preview", "--expect-no-changes", "--policy-pack", "policy"]);
}

/** The smallest per-process server cap that breaks the stack's pool budget (derived, never hard-coded). */
export function impossibleServerCap(s: StackSettings): number {
  const pods = s.workload.replicas + ROLLING_SURGE;
  const available = s.database.maxConnections - s.database.reservedConnections;
  return Math.floor(available / (pods * s.workload.processesPerPod)) + 1;
}

/** The secret deleted in Vault: the preview fails naming where it read; then the secret is back. */
async function secretDeleted(r: StackRun, steady: Snapshot): Promise<void> {
  const c = r.s.credentials;
  await kvDelete(r.vault, c.vaultMount, c.vaultPath);
  const res = await r.pulumi.run(["preview", "--policy-pack", "policy"]);
  assert.notEqual(res.code, 0, "pulumi preview must fail with the secret deleted");
  for (const word of [`mount "${c.vaultMount}"`, `path "${c.vaultPath}"`, `key "`]) {
    assert.ok(res.output.includes(word), `pulumi preview names ${word}:\n${tail(res.output)}`);
  }
  assert.deepEqual(await snapshot(r), steady, "nothing changed in the cluster");
  await writeVaultSecret(r.vault, r.s, 2);
}

/** `pool.maxDbConnections` beyond the budget: the preview fails with the sum; then the setting is back. */
async function impossibleBudget(r: StackRun, steady: Snapshot): Promise<void> {
  const { s } = r;
  const tooMany = impossibleServerCap(s);
  await r.pulumi.configSet("pool.maxDbConnections", String(tooMany));
  const broken = settingsPoolBudget({ ...s, pool: { ...s.pool, maxDbConnections: tooMany } });
  const res = await r.pulumi.run(["preview", "--policy-pack", "policy"]);
  assert.notEqual(res.code, 0, `pulumi preview must fail with pool.maxDbConnections ${tooMany}`);
  assert.ok(res.output.includes(broken.arithmetic), `pulumi preview gives the sum:\n${tail(res.output)}`);
  assert.deepEqual(await snapshot(r), steady, "nothing changed in the cluster");
  await r.pulumi.configSet("pool.maxDbConnections", String(s.pool.maxDbConnections));
}
