/**
 * Step rotation: a new password in Vault, then `pulumi up`: a new Secret (a new name) and one new
 * ReplicaSet, no other object replaced, the backend not rolled; the new Secret serves a real PgBouncer,
 * stale passwords first (rotation-logins.ts).
 */
import * as assert from "node:assert/strict";
import { STATEFULSET_NAME, TLS_SECRET_NAME } from "../../../../components/pgbouncer";
import { getJson, list } from "../../clients/kubectl";
import { vaultData, writeVaultSecret } from "../../fixtures";
import { expectRotatedLogins } from "./rotation-logins";
import {
  POOLER_SELECTOR,
  type StackRun,
  backendRevision,
  expectAvailable,
  measuredBy,
  pulumiUp,
  revision,
  snapshot,
} from "./stack-run";

export async function rotation(r: StackRun): Promise<void> {
  const { k, ns, s } = r;
  const before = await snapshot(r);
  const poolerRevision = revision(await getJson(k, ["deployment", STATEFULSET_NAME, "-n", ns]));
  // The auth Secrets (auto-named); the certificate's Secret keeps its name and is not the rotation's.
  const authSecrets = async () =>
    (await list(k, "secrets", ns, POOLER_SELECTOR))
      .map((o) => o.metadata.name)
      .filter((name) => name !== TLS_SECRET_NAME);
  const secretsBefore = await authSecrets();
  await writeVaultSecret(r.vault, s, 2);
  await pulumiUp(r);
  const secretsAfter = await authSecrets();
  assert.equal(
    secretsAfter.length,
    1,
    `one pooler Secret after the rotation, got ${secretsAfter.join(", ")}`,
  );
  assert.ok(!secretsBefore.includes(secretsAfter[0]), "the Secret changed name");
  const dep = await getJson(k, ["deployment", STATEFULSET_NAME, "-n", ns]);
  assert.equal(revision(dep), poolerRevision + 1, "the pooler rolled once");
  await expectAvailable(r, ns, STATEFULSET_NAME, s.workload.replicas);
  const after = await snapshot(r);
  const replaced = [...before.keys()].filter(
    (key) =>
      !(key.startsWith("Secret/") && !key.endsWith(`/${TLS_SECRET_NAME}`)) &&
      !key.startsWith("ReplicaSet/") &&
      after.get(key)?.split("@")[0] !== before.get(key)?.split("@")[0],
  );
  assert.deepEqual(replaced, [], "no other object was replaced");
  const backendBefore = measuredBy(r.measured.backendRevision, "preview-and-up");
  assert.equal(await backendRevision(r), backendBefore + 1, "the backend did not roll on a pooler rotation");
  const [v1, v2] = [vaultData(s, 1), vaultData(s, 2)];
  r.log(
    await expectRotatedLogins(k, s, {
      user: v2[s.credentials.appUserKey],
      stale: v1[s.credentials.appPasswordKey],
      fresh: v2[s.credentials.appPasswordKey],
    }),
  );
}
