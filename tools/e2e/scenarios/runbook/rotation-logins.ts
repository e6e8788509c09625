/**
 * The rotation's proof on real binaries: after `pulumi up` rolled a new password out, the pods mount the new
 * Secret, and the auth file in it, with the ini in the live ConfigMap, serves a real PgBouncer (the release
 * the stacks deploy) in front of a real PostgreSQL whose password was set the ordinary way: clients with the
 * stale password hammer it first and are refused, then every client with the new password gets in. TLS is
 * off on both legs for these logins (the certificates are kwok's pods' only); npm test runs TLS on the real
 * PgBouncer.
 */
import * as assert from "node:assert/strict";
import { parseAuthFile } from "../../../../components/credentials";
import { STATEFULSET_NAME, SECRET_KEYS, renderIni, podIniInput } from "../../../../components/pgbouncer";
import type { StackSettings } from "../../../../stacks/settings";
import {
  REFUSED_PASSWORD,
  burst,
  harnessIni,
  localRewrites,
  startPgBouncer,
  startPostgres,
  tryLogin,
} from "../../../harness";
import { type KubeObject, type Kubectl, getJson, list } from "../../clients/kubectl";

interface PodSpecLike {
  spec: { volumes?: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[] };
}

/** The Secret and ConfigMap a pod spec mounts, by volume kind. */
function mounted(pod: PodSpecLike): { secret?: string; configMap?: string } {
  const vs = pod.spec.volumes ?? [];
  return {
    secret: vs.find((v) => v.secret)?.secret?.secretName,
    configMap: vs.find((v) => v.configMap)?.configMap?.name,
  };
}

/** The application login before (`stale`) and after (`fresh`) the rotation: Vault's values. */
export interface RotatedLogin {
  readonly user: string;
  readonly stale: string;
  readonly fresh: string;
}

/** Both halves of the proof; returns a line for the log. */
export async function expectRotatedLogins(
  kubectl: Kubectl,
  s: StackSettings,
  login: RotatedLogin,
): Promise<string> {
  const { secret, authFile } = await expectRotatedSecretMounted(kubectl, s, login);
  await expectRotatedAuthFileServes(s, authFile, login);
  return `  the new Secret ${secret} serves PgBouncer: 20 stale logins refused, then 50 of 50 with the new password`;
}

/**
 * Every live pod mounts the Deployment's Secret, whose auth file holds the new password, and the mounted
 * ConfigMap holds the program's ini; returns the Secret's name and auth file.
 */
async function expectRotatedSecretMounted(
  kubectl: Kubectl,
  s: StackSettings,
  login: RotatedLogin,
): Promise<{ secret: string; authFile: string }> {
  const ns = s.namespace;
  const dep = await getJson<KubeObject & { spec: { template: PodSpecLike } }>(kubectl, [
    "deployment",
    STATEFULSET_NAME,
    "-n",
    ns,
  ]);
  const want = mounted(dep.spec.template);
  assert.ok(want.secret && want.configMap, "the pod template mounts a Secret and a ConfigMap");
  // Every live pod of the rolled Deployment mounts that Secret: none is left on the old one.
  const pods = (await list(kubectl, "pods", ns, "app.kubernetes.io/name=pgbouncer")).filter(
    (p) => !p.metadata.deletionTimestamp,
  ) as unknown as (KubeObject & PodSpecLike)[];
  assert.equal(pods.length, s.workload.replicas, "one pod per replica after the roll");
  for (const p of pods)
    assert.equal(mounted(p).secret, want.secret, `pod ${p.metadata.name} mounts the new Secret`);

  const secret = await getJson<KubeObject & { data: Record<string, string> }>(kubectl, [
    "secret",
    want.secret,
    "-n",
    ns,
  ]);
  const authFile = Buffer.from(secret.data[SECRET_KEYS.authFile], "base64").toString("utf8");
  assert.equal(
    parseAuthFile(authFile).get(login.user),
    login.fresh,
    "the new Secret's auth file holds the new password",
  );
  const cm = await getJson<KubeObject & { data: Record<string, string> }>(kubectl, [
    "configmap",
    want.configMap,
    "-n",
    ns,
  ]);
  // The live ini is the program's render; the harness runs that render with its paths and ports only.
  const inis = [renderIni(podIniInput(s, { type: s.credentials.authType }, s.namespace))];
  assert.deepEqual(
    Object.values(cm.data).sort(),
    [...inis].sort(),
    "the live ConfigMap holds the rendered ini",
  );
  return { secret: want.secret, authFile };
}

/**
 * The auth file with the program's ini serves a real PgBouncer in front of a real PostgreSQL: 20 logins
 * with the stale password refused, then 50 of 50 with the new one.
 */
async function expectRotatedAuthFileServes(
  s: StackSettings,
  authFile: string,
  login: RotatedLogin,
): Promise<void> {
  const auth = { type: s.credentials.authType };
  // The proof is the auth file's: TLS is off on both legs here. TLS on the real PgBouncer (verify-full,
  // the refusals, a rotated certificate under open connections) is npm test's (tools/test).
  const { certificate: _cert, serverCa: _ca, ...tls } = s.tls;
  void _cert;
  void _ca;
  const plain: StackSettings = {
    ...s,
    tls: { ...tls, clientSslMode: "disable", serverSslMode: "disable" },
  };
  const pg = await startPostgres({ maxConnections: s.database.maxConnections });
  try {
    // The runbook's first step: PostgreSQL's password, set the ordinary way.
    await pg.psql(`CREATE ROLE ${login.user} LOGIN PASSWORD '${login.fresh.replace(/'/g, "''")}'`);
    await pg.psql(`CREATE DATABASE ${s.database.name} OWNER ${login.user}`);
    const b = await startPgBouncer({
      authFile,
      processes: s.workload.processesPerPod,
      ini: (f) => harnessIni(plain, auth, localRewrites(f, pg)),
    });
    try {
      const conn = { host: b.host, port: b.port, user: login.user, database: s.database.name };
      // Backends still on the old password reach the new pod first.
      const stale = await burst([{ ...conn, password: login.stale }], 20);
      for (const o of stale) {
        assert.ok(!o.ok && REFUSED_PASSWORD.test(o.error), `the stale password: ${JSON.stringify(o)}`);
      }
      const fresh = await burst([{ ...conn, password: login.fresh }], 50);
      const refused = fresh.filter((o) => !o.ok);
      assert.deepEqual(refused, [], "a correct login after the stale ones was refused");
      assert.ok((await tryLogin({ ...conn, password: login.fresh })).ok);
    } finally {
      await b.stop("SIGQUIT");
    }
  } finally {
    await pg.stop();
  }
}
