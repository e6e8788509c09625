/**
 * Step rotation: a new password in Vault, then `pulumi up`: a new Secret (a new name) and one new
 * ReplicaSet, no other object replaced, the backend not rolled; the new Secret serves a real PgBouncer,
 * stale passwords first (rotation-logins.ts). Then, on `INI_CHANGE_STACK`, a new ini: a new ConfigMap and
 * one new ReplicaSet, the auth Secret kept; and back. The Kubernetes provider updates ConfigMaps and
 * Secrets in place, but not these two, which say `immutable: true`: a change still replaces them and rolls
 * the pods.
 */
import * as assert from "node:assert/strict";
import { STATEFULSET_NAME, TLS_SECRET_NAME } from "../../../../components/pgbouncer";
import { type KubeObject, getJson, list } from "../../clients/kubectl";
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
  if (r.stack === INI_CHANGE_STACK) {
    const changed = s.pool.serverIdleTimeoutSeconds + 60;
    await expectIniRolls(r, String(changed));
    await expectIniRolls(r, String(s.pool.serverIdleTimeoutSeconds));
  } else {
    r.log(`  the ini change: on the stack ${INI_CHANGE_STACK} only (the same code path in every stack)`);
  }
}

/** The stack whose rotation step also changes the ini (prod renews its certificate meanwhile). */
export const INI_CHANGE_STACK = "staging";
const INI_KEY = "pool.serverIdleTimeoutSeconds";

/**
 * `server_idle_timeout` set to `value`, then `pulumi up`: the ini's ConfigMap replaced under a new name
 * (the old one gone), the auth Secret kept, the pooler rolled once onto the new one.
 */
async function expectIniRolls(r: StackRun, value: string): Promise<void> {
  const { k, ns } = r;
  const named = async (kind: string, prefix: string) =>
    (await list(k, kind, ns, POOLER_SELECTOR))
      .map((o) => o.metadata.name)
      .filter((n) => n.startsWith(prefix));
  const [ini0, auth0] = [
    await named("configmaps", "pgbouncer-config-"),
    await named("secrets", "pgbouncer-auth-"),
  ];
  const rev0 = revision(await getJson(k, ["statefulset", STATEFULSET_NAME, "-n", ns]));
  await r.pulumi.configSet(INI_KEY, value);
  await pulumiUp(r);
  const [ini1, auth1] = [
    await named("configmaps", "pgbouncer-config-"),
    await named("secrets", "pgbouncer-auth-"),
  ];
  assert.equal(ini1.length, 1, `one ini ConfigMap after the change: ${ini1.join(", ")}`);
  assert.ok(!ini0.includes(ini1[0]), `a new ini ConfigMap (was ${ini0.join(", ")}, is ${ini1[0]})`);
  assert.deepEqual(auth1, auth0, "the auth Secret kept");
  const dep = await getJson<
    KubeObject & {
      spec: { template: { spec: { volumes: { name: string; configMap?: { name: string } }[] } } };
    }
  >(k, ["statefulset", STATEFULSET_NAME, "-n", ns]);
  assert.equal(revision(dep), rev0 + 1, "the pooler rolled once");
  assert.equal(
    dep.spec.template.spec.volumes.find((v) => v.name === "config")?.configMap?.name,
    ini1[0],
    "the pods mount the new ini",
  );
  await expectAvailable(r, ns, STATEFULSET_NAME, r.s.workload.replicas);
  r.log(
    `  ${INI_KEY} ${value}: ini ConfigMap ${ini0.join(", ")} -> ${ini1[0]}, pooler revision ${rev0} -> ${rev0 + 1}`,
  );
}
