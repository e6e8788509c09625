/**
 * Step certificate-renewal (one stack, `RENEWAL_STACK`), the runbook's "Renewal": the certificate made due,
 * then the documented outcome of each command: a plain `pulumi up` keeps the certificate (the Vault provider
 * decides "due" only when it reads it, on a refresh); `pulumi up --refresh`, as the runbook and the deploy
 * workflow run it, re-issues it. On the API server: a new certificate (new serial, still OpenBao's, same
 * names) in the Secret `pgbouncer-tls`, updated in place (a watch on it and on the ConfigMap `pgbouncer-ca`
 * sees no DELETED event), the StatefulSet's generation and pod template unchanged and no new
 * ControllerRevision, the pods the same (same uids), no object replaced, the backend not rolled. On the real
 * binaries (the live fleet): the new files swapped in as the kubelet would, every process applies them, new
 * connections get the new certificate and a connection opened before keeps its session. Then the setting
 * back, `pulumi up` re-issues nothing, and a preview has no changes.
 *
 * "Due" the honest way: `tls.certificate.renewBeforeSeconds` set just under `ttlSeconds` in the run's config
 * copy, so the certificate (issued minutes ago) has less validity left than that.
 */
import * as assert from "node:assert/strict";
import { POOLER_CA_CONFIGMAP, TLS_SECRET_NAME } from "../../../../components/pgbouncer";
import { PgClient } from "../../../harness";
import { sleep } from "../../../harness/proc";
import { watchObject } from "../../clients/kubectl";
import { APP_USERS, appPassword } from "../../fixtures";
import { liveFleetOf, whoAmI } from "./live-fleet";
import { expectPodsKept, podsState } from "./in-place";
import { type StackRun, backendRevision, pulumiUp, snapshot } from "./stack-run";
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
/**
 * The certificate is due this many seconds after it was issued (renewBefore = ttl - this). The setting goes
 * back before the renewed one is due in turn: every `up` refreshes, and a refresh judges "due" by the
 * setting in the state.
 */
const DUE_AFTER_SECONDS = 60;

const RENEW_KEY = "tls.certificate.renewBeforeSeconds";

export async function certificateRenewal(r: StackRun): Promise<void> {
  const c = r.s.tls.certificate;
  if (c?.source !== "vault-pki" || r.stack !== RENEWAL_STACK) {
    r.log(
      `  skipped: the renewal runs on the stack ${RENEWAL_STACK} only (the same code path in every stack)`,
    );
    return;
  }
  const { ns } = r;
  const cert0 = await liveCertificate(r);
  const pods0 = await podsState(r);
  const backend0 = await backendRevision(r);
  const before = await snapshot(r);
  // Due when less than renewBefore is left, judged from the expiry as the Vault provider judges it (not from
  // notBefore, which Vault backdates by its not_before_duration, 30 s by default); on a quick run, wait for
  // it (at most DUE_AFTER_SECONDS).
  const renewBefore = c.ttlSeconds - DUE_AFTER_SECONDS;
  const dueIn = (cert: { leaf: { validTo: string } }) =>
    (Date.parse(cert.leaf.validTo) - renewBefore * 1000 - Date.now()) / 1000;
  if (dueIn(cert0) >= 0) await sleep((dueIn(cert0) + 2) * 1000);
  assert.ok(dueIn(cert0) < 0, `the certificate is due (${(-dueIn(cert0)).toFixed(0)} s ago)`);

  // Watched from before the renewal to after it: a deletion, however short, is an event.
  const watches = await Promise.all([
    watchObject(r.world, "secrets", ns, TLS_SECRET_NAME),
    watchObject(r.world, "configmaps", ns, POOLER_CA_CONFIGMAP),
  ]);
  let watched: string[][] = [];
  try {
    await r.pulumi.configSet(RENEW_KEY, String(renewBefore));
    // The runbook: "a plain `pulumi up` without `--refresh` keeps the old one".
    await r.pulumi.ok(["up", "--yes", "--skip-preview", "--policy-pack", "policy"]);
    assert.equal(
      (await liveCertificate(r)).serial,
      cert0.serial,
      "a plain pulumi up keeps the due certificate",
    );
    // The runbook's `pulumi up --refresh` re-issues it.
    await pulumiUp(r);
  } finally {
    // The kubectl watches end whatever happened.
    watched = await Promise.all(watches.map((w) => w.stop()));
  }
  const [secretEvents, caEvents] = watched;
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
  expectPodsKept(pods0, await podsState(r));
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
  assert.ok(dueIn(cert1) > 0, `the renewed certificate is not due yet (due in ${dueIn(cert1).toFixed(0)} s)`);
  await pulumiUp(r);
  assert.equal((await liveCertificate(r)).serial, cert1.serial, "the setting back re-issued nothing");
  await r.pulumi.ok(["preview", "--expect-no-changes", "--policy-pack", "policy"]);
  await expectServedOnTheFleet(r, cert0.serial, cert1.serial);
}

/**
 * On the live fleet: a connection opened before, then the renewed files swapped in (the kubelet's swap of the
 * Secret's projection); once every process applied them, a new connection gets the new certificate, and the
 * one opened before still runs on its session, with the old one.
 */
async function expectServedOnTheFleet(r: StackRun, oldSerial: string, newSerial: string): Promise<void> {
  const live = liveFleetOf(r);
  const current = r.logins.current;
  const conn = live.conn(APP_USERS[current], appPassword(current, r.logins[current]));
  const open = await PgClient.connect(conn, { applicationName: "e2e-before-renewal" });
  try {
    assert.equal(open.peerCertificate?.serialNumber.toUpperCase(), oldSerial.toUpperCase());
    const before = live.applied();
    const since = Date.now();
    assert.deepEqual(await live.sync(), ["tls"], "the renewal changed the tls volume's files only");
    const t = await live.untilApplied(before, since);
    const fresh = await whoAmI(conn);
    assert.equal(fresh.serial?.toUpperCase(), newSerial.toUpperCase(), `a new connection: ${fresh.error}`);
    await open.query("SELECT 1");
    assert.equal(open.peerCertificate?.serialNumber.toUpperCase(), oldSerial.toUpperCase());
    r.log(
      `  the fleet: applied on the canary ${t.canary.toFixed(1)} s and everywhere ${t.all.toFixed(1)} s after ` +
        `the swap; new connections get serial ${newSerial}, the open one kept its session`,
    );
  } finally {
    open.close();
  }
}
