/**
 * Changes that reach the pods in place (issue 26), each as the runbook makes it, checked on the API server
 * (the preview plans updates of the ConfigMap or the Secret only, the `pulumi up` updates them under the same
 * uid, the StatefulSet's generation, pod template and ControllerRevisions stay, and so do the pods and their
 * uids) and on the live fleet (the changed object's files swapped in, every process applies them, and what
 * they change is served):
 * - step rotation: the alternating-logins runbook (components/credentials/README.md, "Rotation"): the idle
 *   login's new password in PostgreSQL, then in Vault, `pulumi up`, every pod applies it; then `app_current`
 *   moved to it and `pulumi up` (the stack output `connectionUrl` only);
 * - step reload: a pool size, reaching SHOW CONFIG of every process; and back.
 * And the opposite: step port-rolls, a `pgbouncer.port` change rolls the pods, one at a time.
 */
import * as assert from "node:assert/strict";
import { AUTH_CONFIG_NAMES, SECRET_KEYS } from "../../../../components/pgbouncer";
import { parseAuthFile } from "../../../../components/credentials";
import type { Conn } from "../../../harness";
import { sleep } from "../../../harness/proc";
import { type KubeObject, getJson, list } from "../../clients/kubectl";
import { APP_USERS, type LoginsState, appPassword, writeVaultSecret } from "../../fixtures";
import { liveFleetOf, stopLiveFleet, whoAmI } from "./live-fleet";
import {
  POOLER_SELECTOR,
  type PlannedStep,
  type Snapshot,
  type StackRun,
  expectStatefulSetReady,
  plannedChanges,
  poolerPodUids,
  pulumiUp,
  snapshot,
  statefulSet,
} from "./stack-run";

/** The StatefulSet and its pods, as far as a roll would change them. */
export interface PodsState {
  readonly generation?: number;
  readonly template: string;
  readonly revisions: readonly string[];
  readonly pods: ReadonlyMap<string, string>;
}

export async function podsState(r: StackRun): Promise<PodsState> {
  const st = await statefulSet(r);
  const revisions = (await list(r.k, "controllerrevisions.apps", r.ns, POOLER_SELECTOR))
    .map((o) => o.metadata.name)
    .sort();
  return {
    generation: st.metadata.generation,
    template: JSON.stringify(st.spec.template),
    revisions,
    pods: await poolerPodUids(r),
  };
}

/** Nothing rolled: the same generation, pod template and ControllerRevisions, the same pods (uids). */
export function expectPodsKept(before: PodsState, after: PodsState): void {
  assert.equal(after.generation, before.generation, "the StatefulSet's generation unchanged");
  assert.equal(after.template, before.template, "the pod template unchanged");
  assert.deepEqual(after.revisions, before.revisions, "no new ControllerRevision");
  assert.deepEqual([...after.pods].sort(), [...before.pods].sort(), "the same pods, with the same uids");
}

/**
 * Between two snapshots, exactly `updated` changed, each under the same uid (updated in place); nothing was
 * added, removed or replaced.
 */
export function expectUpdatedInPlace(before: Snapshot, after: Snapshot, updated: readonly string[]): void {
  const uid = (v: string | undefined) => v?.split("@")[0];
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), "no object added or removed");
  const replaced = [...before.keys()].filter((k) => uid(after.get(k)) !== uid(before.get(k)));
  assert.deepEqual(replaced, [], "nothing replaced (same name, new uid)");
  const changed = [...before.keys()].filter((k) => after.get(k) !== before.get(k));
  assert.deepEqual(changed.sort(), [...updated].sort(), "updated in place");
}

/** The preview plans exactly `want` (`op type name`), nothing else. */
export async function expectPlan(r: StackRun, want: readonly string[], what: string): Promise<PlannedStep[]> {
  const plan = await plannedChanges(r);
  const got = plan.map((x) => `${x.op} ${x.type} ${x.name}`);
  r.log(`  pulumi preview (${what}): ${got.length === 0 ? "no change" : got.join("; ")}`);
  assert.deepEqual(got, want, `the preview of ${what}`);
  return plan;
}

const SECRET_UPDATE = `update kubernetes:core/v1:Secret ${AUTH_CONFIG_NAMES.auth}`;
const CONFIGMAP_UPDATE = `update kubernetes:core/v1:ConfigMap ${AUTH_CONFIG_NAMES.config}`;

/** New logins one after the other through the fleet's balancer until stopped: a backend that keeps connecting. */
function keepLoggingIn(conn: Conn): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      const got = await whoAmI(conn);
      if (got.user === conn.user) ok++;
      else failed.push(got.error ?? `logged in as ${got.user}`);
      await sleep(200);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

export async function rotation(r: StackRun): Promise<void> {
  const second = r.s.credentials.secondLogin;
  assert.ok(second, `the stack ${r.stack} has credentials.secondLogin`);
  const live = liveFleetOf(r);
  const inUse = r.logins.current;
  const idle = inUse === "a" ? "b" : "a";
  const next: LoginsState = { ...r.logins, [idle]: r.logins[idle] + 1 };
  const [oldPassword, newPassword] = [appPassword(idle, r.logins[idle]), appPassword(idle, next[idle])];
  const backend = live.conn(APP_USERS[inUse], appPassword(inUse, r.logins[inUse]));

  // 1. The idle login's new password: in PostgreSQL (the live fleet's), then in Vault.
  await live.fleet.world.pg.psql(`ALTER ROLE "${APP_USERS[idle]}" PASSWORD '${newPassword}'`);
  await writeVaultSecret(r.vault, r.s, next);
  r.logins = next;
  // 2. pulumi up: the Secret pgbouncer-auth, in place.
  await expectPlan(r, [SECRET_UPDATE], `${APP_USERS[idle]}'s new password`);
  const before = await snapshot(r);
  const pods = await podsState(r);
  await pulumiUp(r);
  expectUpdatedInPlace(before, await snapshot(r), [`Secret/${r.ns}/${AUTH_CONFIG_NAMES.auth}`]);
  expectPodsKept(pods, await podsState(r));
  const secret = await getJson<KubeObject & { data: Record<string, string> }>(r.k, [
    "secret",
    AUTH_CONFIG_NAMES.auth,
    "-n",
    r.ns,
  ]);
  const authFile = Buffer.from(secret.data[SECRET_KEYS.authFile], "base64").toString("utf8");
  assert.equal(
    parseAuthFile(authFile).get(APP_USERS[idle]),
    newPassword,
    "the live auth file's new password",
  );
  // ... and every pod applies it, while the backends on the login in use keep logging in.
  const logins = keepLoggingIn(backend);
  const applied = live.applied();
  const since = Date.now();
  try {
    assert.deepEqual(await live.sync(), ["auth"], "the rotation changed the auth volume's files only");
    const t = await live.untilApplied(applied, since);
    r.log(
      `  the new auth file: on the canary ${t.canary.toFixed(1)} s, everywhere ${t.all.toFixed(1)} s after the swap`,
    );
  } finally {
    const seen = await logins.stop();
    assert.deepEqual(seen.failed, [], `the backends on ${APP_USERS[inUse]} refused meanwhile`);
    r.log(`  ${seen.ok} logins as ${APP_USERS[inUse]} meanwhile, none refused`);
  }
  for (const x of live.fleet.replicas()) {
    const fresh = await whoAmI(live.conn(APP_USERS[idle], newPassword, x.ordinal));
    assert.equal(
      fresh.user,
      APP_USERS[idle],
      `${APP_USERS[idle]}'s new password on ${x.name}: ${fresh.error}`,
    );
    const stale = await whoAmI(live.conn(APP_USERS[idle], oldPassword, x.ordinal));
    assert.match(
      stale.error ?? "",
      /password authentication failed|SASL authentication failed/,
      `the old password on ${x.name}`,
    );
  }

  // 3. Backends may use the new login: app_current moves, and pulumi up gives them connectionUrl.
  const moved: LoginsState = { ...next, current: idle };
  await writeVaultSecret(r.vault, r.s, moved);
  r.logins = moved;
  await expectPlan(r, [], `${second.currentKey} moved to ${APP_USERS[idle]}`);
  const before2 = await snapshot(r);
  await pulumiUp(r);
  expectUpdatedInPlace(before2, await snapshot(r), []);
  expectPodsKept(pods, await podsState(r));
  const url = new URL(String((await r.pulumi.outputs()).connectionUrl));
  assert.equal(decodeURIComponent(url.username), APP_USERS[idle], "connectionUrl names the new login");
  const moving = await whoAmI(live.conn(decodeURIComponent(url.username), decodeURIComponent(url.password)));
  assert.equal(moving.user, APP_USERS[idle], `a backend on the new connectionUrl: ${moving.error}`);
  const staying = await whoAmI(backend);
  assert.equal(staying.user, APP_USERS[inUse], `a backend still on ${APP_USERS[inUse]}: ${staying.error}`);
  r.log(
    `  ${APP_USERS[idle]} rotated: its old password refused, its new one served everywhere; connectionUrl on ` +
      `${APP_USERS[idle]}, ${APP_USERS[inUse]} still served; nothing rolled`,
  );
}

const POOL_KEY = "pool.defaultPoolSize";

/** A pool size in place: the ConfigMap updated, nothing rolled; every process's SHOW CONFIG has it. */
export async function reload(r: StackRun): Promise<void> {
  const live = liveFleetOf(r);
  try {
    const changed = Math.max(r.s.pool.minPoolSize, r.s.pool.defaultPoolSize - 5);
    assert.notEqual(changed, r.s.pool.defaultPoolSize);
    assert.deepEqual(
      await live.config("default_pool_size"),
      live.fleet.replicas().flatMap((x) => x.processes.map(() => String(r.s.pool.defaultPoolSize))),
    );
    await r.pulumi.configSet(POOL_KEY, String(changed));
    await expectPlan(r, [CONFIGMAP_UPDATE], `${POOL_KEY} ${changed}`);
    const before = await snapshot(r);
    const pods = await podsState(r);
    await pulumiUp(r);
    expectUpdatedInPlace(before, await snapshot(r), [`ConfigMap/${r.ns}/${AUTH_CONFIG_NAMES.config}`]);
    expectPodsKept(pods, await podsState(r));
    const applied = live.applied();
    const since = Date.now();
    assert.deepEqual(await live.sync(), ["config"], "the pool size changed the config volume's files only");
    const t = await live.untilApplied(applied, since);
    const values = await live.config("default_pool_size");
    assert.deepEqual(
      new Set(values),
      new Set([String(changed)]),
      `SHOW CONFIG default_pool_size: ${values.join()}`,
    );
    r.log(
      `  ${POOL_KEY} ${changed}: SHOW CONFIG of every process has it, on the canary ${t.canary.toFixed(1)} s and ` +
        `everywhere ${t.all.toFixed(1)} s after the swap; nothing rolled`,
    );
    await r.pulumi.configSet(POOL_KEY, String(r.s.pool.defaultPoolSize));
    const back = await snapshot(r);
    await pulumiUp(r);
    expectUpdatedInPlace(back, await snapshot(r), [`ConfigMap/${r.ns}/${AUTH_CONFIG_NAMES.config}`]);
    expectPodsKept(pods, await podsState(r));
  } finally {
    // The last step on the real binaries.
    await stopLiveFleet(r);
  }
}

/** The stack whose scenario changes the port (prod renews its certificate meanwhile). */
export const PORT_CHANGE_STACK = "staging";

/**
 * `pgbouncer.port`, which a reload cannot apply (`listen_port`), then back: each `pulumi up` updates the
 * StatefulSet (no replacement) and rolls the pods, one at a time, highest ordinal first: every pod replaced
 * (new uids), at no moment more than one pod missing or unready, never more pods than replicas.
 */
export async function portRolls(r: StackRun): Promise<void> {
  if (r.stack !== PORT_CHANGE_STACK) {
    r.log(
      `  skipped: the port change runs on the stack ${PORT_CHANGE_STACK} only (the same code path in every stack)`,
    );
    return;
  }
  for (const port of [r.s.workload.port + 1, r.s.workload.port]) {
    await r.pulumi.configSet("pgbouncer.port", String(port));
    const plan = await plannedChanges(r);
    const st = plan.find((x) => x.type === "kubernetes:apps/v1:StatefulSet");
    assert.equal(
      st?.op,
      "update",
      `the preview updates the StatefulSet (no replacement): ${JSON.stringify(plan)}`,
    );
    const before = await podsState(r);
    const sampler = sampleRoll(r);
    try {
      await pulumiUp(r);
      await expectStatefulSetReady(r);
    } finally {
      const seen = await sampler.stop();
      r.log(
        `  pgbouncer.port ${port}: replaced ${seen.order.join(" then ")}; ${seen.samples} samples, at most ` +
          `${seen.maxDown} pod(s) missing or unready, at most ${seen.maxPods} pods`,
      );
      assert.equal(seen.maxDown, 1, "one pod at a time (maxUnavailable 1), and the roll was seen");
      assert.ok(
        seen.maxPods <= r.s.workload.replicas,
        `never more pods than replicas (no surge): ${seen.maxPods}`,
      );
      const names = [...before.pods.keys()].sort((a, b) => ordinal(b) - ordinal(a));
      assert.deepEqual(seen.order, names, "highest ordinal first, each once");
    }
    const after = await podsState(r);
    for (const [name, uid] of before.pods) assert.notEqual(after.pods.get(name), uid, `${name} replaced`);
    assert.notEqual(after.template, before.template, "a new pod template");
  }
}

function ordinal(name: string): number {
  return Number(/-(\d+)$/.exec(name)?.[1]);
}

/** Watches the pods during a roll: how many are missing or unready at once, and which were replaced when. */
function sampleRoll(r: StackRun): {
  stop(): Promise<{ samples: number; maxDown: number; maxPods: number; order: string[] }>;
} {
  let running = true;
  let samples = 0;
  let maxDown = 0;
  let maxPods = 0;
  const firstUids = new Map<string, string>();
  const order: string[] = [];
  const loop = (async () => {
    const deadline = Date.now() + 600_000;
    while (running && Date.now() < deadline) {
      const pods = (await list(r.k, "pods", r.ns, POOLER_SELECTOR)) as (KubeObject & {
        status?: { conditions?: { type: string; status: string }[] };
      })[];
      samples++;
      maxPods = Math.max(maxPods, pods.length);
      const serving = pods.filter(
        (p) =>
          !p.metadata.deletionTimestamp &&
          (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
      );
      maxDown = Math.max(maxDown, r.s.workload.replicas - serving.length);
      for (const p of pods) {
        const was = firstUids.get(p.metadata.name);
        if (was === undefined) firstUids.set(p.metadata.name, p.metadata.uid);
        else if (was !== p.metadata.uid && !order.includes(p.metadata.name)) order.push(p.metadata.name);
      }
      await sleep(200);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples, maxDown, maxPods, order };
    },
  };
}
