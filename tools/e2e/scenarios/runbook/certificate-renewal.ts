/**
 * Step certificate-renewal (one stack, `RENEWAL_STACK`): the certificate made due, then `pulumi up`: a new
 * certificate (new serial, still OpenBao's, same names) in the Secret `pgbouncer-tls`, updated in place: a
 * watch on it and on the ConfigMap `pgbouncer-ca` sees no DELETED event (the stack's Kubernetes provider has
 * enableSecretMutable and enableConfigMapMutable: before, the provider deleted and re-created both, and a pod
 * starting meanwhile waited on its mounts); no new ReplicaSet (the Deployment's generation and pod template
 * unchanged: the pods reload the files the kubelet swaps, which kwok cannot show), no object replaced, the
 * backend not rolled; then the setting back, `pulumi up` re-issues nothing, and a preview has no changes.
 *
 * "Due" the honest way: `tls.certificate.renewBeforeSeconds` set just under `ttlSeconds` in the run's config
 * copy, so the certificate (issued minutes ago) has less validity left than that.
 */
import * as assert from "node:assert/strict";
import { STATEFULSET_NAME, POOLER_CA_CONFIGMAP, TLS_SECRET_NAME } from "../../../../components/pgbouncer";
import { type KubeObject, getJson, list, watchObject } from "../../clients/kubectl";
import { POOLER_SELECTOR, type StackRun, backendRevision, pulumiUp, snapshot } from "./stack-run";
import { expectIssuedCertificate, liveCertificate } from "./tls";

/**
 * What a renewal may update in place (same uid, new resourceVersion): the certificate's Secret, the CA's
 * ConfigMap (rewritten with the same CA, which may leave it as it was) and the certificate's expiry alerts.
 * It replaces nothing.
 */
export function updatedOnRenewal(ns: string, key: string): boolean {
  return (
    key === `Secret/${ns}/${TLS_SECRET_NAME}` ||
    key === `ConfigMap/${ns}/${POOLER_CA_CONFIGMAP}` ||
    /^PrometheusRule\/.*certificate-rules/.test(key)
  );
}

/** The stack whose scenario renews its certificate: the path is the same for every stack. */
export const RENEWAL_STACK = "prod";
/** The certificate is due this many seconds after it was issued (renewBefore = ttl - this). */
const DUE_AFTER_SECONDS = 30;

const RENEW_KEY = "tls.certificate.renewBeforeSeconds";

export async function certificateRenewal(r: StackRun): Promise<void> {
  const c = r.s.tls.certificate;
  if (c?.source !== "vault-pki" || r.stack !== RENEWAL_STACK) {
    r.log(
      `  skipped: the renewal runs on the stack ${RENEWAL_STACK} only (the same code path in every stack)`,
    );
    return;
  }
  const { k, ns } = r;
  const cert0 = await liveCertificate(r);
  const dep0 = await getJson<KubeObject & { spec: { template: unknown } }>(k, [
    "deployment",
    STATEFULSET_NAME,
    "-n",
    ns,
  ]);
  const replicaSets = async () =>
    (await list(k, "replicasets.apps", ns, POOLER_SELECTOR)).map((o) => o.metadata.uid).sort();
  const rs0 = await replicaSets();
  const backend0 = await backendRevision(r);
  const before = await snapshot(r);
  const issuedAgo = (Date.now() - Date.parse(cert0.leaf.validFrom)) / 1000;
  assert.ok(issuedAgo > DUE_AFTER_SECONDS, `the certificate was issued ${issuedAgo.toFixed(0)} s ago`);

  // Watched from before the renewal to after it: a deletion, however short, is an event.
  const watches = await Promise.all([
    watchObject(r.world, "secrets", ns, TLS_SECRET_NAME),
    watchObject(r.world, "configmaps", ns, POOLER_CA_CONFIGMAP),
  ]);
  await r.pulumi.configSet(RENEW_KEY, String(c.ttlSeconds - DUE_AFTER_SECONDS));
  await pulumiUp(r);
  const plain = await liveCertificate(r);
  if (plain.serial === cert0.serial) {
    // The Vault provider decides "due" (renew_pending) when it reads the certificate, i.e. on a refresh;
    // a plain `up` diffs against the state, where it is still false.
    r.log("  a plain pulumi up did not re-issue the due certificate; pulumi up --refresh:");
    await r.pulumi.ok(["up", "--yes", "--skip-preview", "--refresh", "--policy-pack", "policy"]);
  } else {
    r.log("  the plain pulumi up re-issued the due certificate");
  }

  const [secretEvents, caEvents] = await Promise.all(watches.map((w) => w.stop()));
  r.log(
    `  watched ${TLS_SECRET_NAME}: ${secretEvents.join(", ")}; ${POOLER_CA_CONFIGMAP}: ${caEvents.join(", ")}`,
  );
  for (const [name, events] of [
    [TLS_SECRET_NAME, secretEvents],
    [POOLER_CA_CONFIGMAP, caEvents],
  ] as const) {
    assert.deepEqual(
      events.filter((e) => e.startsWith("DELETED")),
      [],
      `${name} was never deleted during the renewal: ${events.join(", ")}`,
    );
  }
  assert.ok(
    secretEvents.some((e) => e.startsWith("MODIFIED")),
    `the watch saw ${TLS_SECRET_NAME} updated: ${secretEvents.join(", ")}`,
  );

  const cert1 = await expectIssuedCertificate(r);
  assert.notEqual(cert1.serial, cert0.serial, "a new certificate (new serial) in pgbouncer-tls");
  assert.ok(Date.parse(cert1.leaf.validTo) > Date.parse(cert0.leaf.validTo), "the new one expires later");
  const dep1 = await getJson<KubeObject & { spec: { template: unknown } }>(k, [
    "deployment",
    STATEFULSET_NAME,
    "-n",
    ns,
  ]);
  assert.equal(dep1.metadata.generation, dep0.metadata.generation, "the Deployment's generation unchanged");
  assert.deepEqual(dep1.spec.template, dep0.spec.template, "the pod template unchanged");
  assert.deepEqual(await replicaSets(), rs0, "no new ReplicaSet: the pods were not rolled");
  assert.equal(await backendRevision(r), backend0, "the backend did not roll");
  const after = await snapshot(r);
  const uid = (v: string | undefined) => v?.split("@")[0];
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), "no object left or added by name");
  const replaced = [...before.keys()].filter((key) => uid(after.get(key)) !== uid(before.get(key)));
  assert.deepEqual(replaced, [], "nothing replaced (same name, new uid)");
  const updated = [...before.keys()].filter((key) => after.get(key) !== before.get(key));
  assert.ok(
    updated.includes(`Secret/${ns}/${TLS_SECRET_NAME}`),
    `the Secret updated in place: ${updated.join(", ")}`,
  );
  assert.deepEqual(
    updated.filter((key) => !updatedOnRenewal(ns, key)),
    [],
    "updated in place: the certificate's Secret, the CA's ConfigMap and the expiry alerts only",
  );
  r.log(`  renewed: serial ${cert0.serial} -> ${cert1.serial}; updated in place: ${updated.join(", ")}`);

  await r.pulumi.configSet(RENEW_KEY, String(c.renewBeforeSeconds));
  await pulumiUp(r);
  assert.equal((await liveCertificate(r)).serial, cert1.serial, "the setting back re-issued nothing");
  await r.pulumi.ok(["preview", "--expect-no-changes", "--policy-pack", "policy"]);
}
