/**
 * Field ownership with the real engine: the backend's `DB_HOST`/`DB_PORT` between the backend team's own
 * applies (kubectl, its default field manager) and the pooler's patch (`pulumi up`), step by step as
 * docs/runbook.md ("Field ownership") tells it: their apply, our `up`, their re-apply (a conflict), then the
 * runbook's two recipes (drop the two keys; hand the values over), its warning about `--force-conflicts`
 * and the `--refresh` that repairs it, and the client-side team's variant. One function per step; the
 * caller (extra.ts) runs them in this order on its live stack.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { FIELD_MANAGER } from "../../../../components/backend-route";
import { PROJECT_DIR } from "../../../../stacks/stack-file";
import { type BackendTeam, KUBECTL_SSA_MANAGER, dbKeys, ownersOf } from "./backend-team";

export { type OwnershipContext, openBackendTeam } from "./backend-team";

/** The conflict message the runbook quotes in its step 3 (the first backticked phrase there). */
export function runbookConflictMessage(): string {
  const text = fs.readFileSync(path.join(PROJECT_DIR, "docs", "runbook.md"), "utf8");
  const section = text.slice(text.indexOf("### Field ownership"));
  const m = /their next apply of the same manifest fails[^`]*`([^`]+)`/.exec(section);
  if (!m) throw new Error("docs/runbook.md: no conflict message in the Field ownership section");
  return m[1];
}

/** 1: their server-side apply, before the pooler: `kubectl` owns every key. */
export async function theirApply(t: BackendTeam): Promise<void> {
  await t.fresh(false);
  const owners = ownersOf(await t.live());
  t.log(`  owners after their apply: ${JSON.stringify(owners)}`);
  for (const key of [t.hostKey, t.portKey, "LOG_LEVEL"]) {
    assert.ok(owners[KUBECTL_SSA_MANAGER]?.includes(key), `${KUBECTL_SSA_MANAGER} owns ${key}`);
  }
}

/** 2 (after the caller's `pulumi up`): the pooler owns the two keys, they keep the rest. */
export async function afterOurUp(t: BackendTeam): Promise<void> {
  const cm = await t.live();
  assert.deepEqual(dbKeys(t, cm), await t.pooler(), "the patch set the pooler's host and port");
  const owners = ownersOf(cm);
  t.log(`  owners after our up: ${JSON.stringify(owners)}`);
  assert.deepEqual(owners[FIELD_MANAGER], [t.hostKey, t.portKey].sort());
  assert.ok(owners[KUBECTL_SSA_MANAGER]?.includes("LOG_LEVEL"), "they keep LOG_LEVEL");
  assert.ok(!owners[KUBECTL_SSA_MANAGER]?.includes(t.hostKey), `they lost ${t.hostKey}`);
}

/** 3: their re-apply of the same manifest conflicts, with the runbook's message; the values stay. */
export async function theirReapplyConflicts(t: BackendTeam): Promise<void> {
  const want = await t.pooler();
  const r = await t.kubectl(["-n", t.ns, "apply", "--server-side", "-f", t.full]);
  t.log(`  their re-apply: exit ${r.code}: ${r.stderr.trim().split("\n").join(" | ")}`);
  assert.notEqual(r.code, 0, "their re-apply of the same manifest conflicts");
  assert.ok(
    r.stderr.includes(runbookConflictMessage()),
    `the runbook's message: ${runbookConflictMessage()}`,
  );
  for (const f of [`.data.${t.hostKey}`, `.data.${t.portKey}`]) assert.ok(r.stderr.includes(f), `names ${f}`);
  assert.deepEqual(dbKeys(t, await t.live()), want, "the values are unchanged");
}

/** 4, the runbook's first recipe: their manifest without the two keys applies; the keys keep our values. */
export async function theyDropTheKeys(t: BackendTeam): Promise<void> {
  const want = await t.pooler();
  const dropped = await t.kubectl(["-n", t.ns, "apply", "--server-side", "-f", t.withoutKeys]);
  assert.equal(dropped.code, 0, `drop the two keys: ${dropped.stderr}`);
  const afterDrop = await t.live();
  assert.deepEqual(dbKeys(t, afterDrop), want, "the keys keep the pooler's values");
  assert.equal(afterDrop.data?.LOG_LEVEL, "info");
}

/** 5, the second recipe: their manifest with the pooler's values applies; both managers co-own the keys. */
export async function theyHandTheValuesOver(t: BackendTeam): Promise<void> {
  const want = await t.pooler();
  const handed = t.manifest("backend-config-handed-over.yaml", {
    [t.hostKey]: want.host,
    [t.portKey]: want.port,
  });
  const h = await t.kubectl(["-n", t.ns, "apply", "--server-side", "-f", handed]);
  assert.equal(h.code, 0, `hand the values over: ${h.stderr}`);
  const owners = ownersOf(await t.live());
  t.log(`  owners after the hand-over: ${JSON.stringify(owners)}`);
  for (const m of [FIELD_MANAGER, KUBECTL_SSA_MANAGER]) {
    assert.ok(owners[m]?.includes(t.hostKey), `${m} co-owns ${t.hostKey}`);
    assert.ok(owners[m]?.includes(t.portKey), `${m} co-owns ${t.portKey}`);
  }
}

/** 6: a forced apply takes the keys back; a plain `pulumi up` does not repair it, `--refresh` does. */
export async function forcedAndRefresh(t: BackendTeam): Promise<void> {
  const f = await t.kubectl(["-n", t.ns, "apply", "--server-side", "--force-conflicts", "-f", t.full]);
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(dbKeys(t, await t.live()), t.direct, "the forced apply set PostgreSQL's host and port");
  await t.up();
  const plain = dbKeys(t, await t.live());
  t.log(`  after a plain pulumi up: ${JSON.stringify(plain)}`);
  assert.deepEqual(plain, t.direct, "a plain pulumi up does not re-apply the patch (no diff in its state)");
  await t.up(["--refresh"]);
  assert.deepEqual(dbKeys(t, await t.live()), await t.pooler(), "pulumi up --refresh re-applies the patch");
}

/** 7, a client-side team: dropping the keys client-side deletes them. */
export async function clientSideDropDeletes(t: BackendTeam): Promise<void> {
  const want = await t.pooler();
  await t.fresh(true);
  await t.up(["--refresh"]);
  assert.deepEqual(dbKeys(t, await t.live()), want);
  const a = await t.kubectl(["-n", t.ns, "apply", "-f", t.withoutKeys]);
  assert.equal(a.code, 0, a.stderr);
  const deleted = await t.live();
  t.log(`  client-side apply without the keys: ${JSON.stringify(dbKeys(t, deleted))}`);
  assert.deepEqual(
    dbKeys(t, deleted),
    { host: undefined, port: undefined },
    "client-side: the keys are deleted",
  );
}

/** 7, the runbook's way out for a client-side team: a first server-side apply without the keys keeps them. */
export async function switchToServerSideKeeps(t: BackendTeam): Promise<void> {
  const want = await t.pooler();
  await t.fresh(true);
  await t.up(["--refresh"]);
  assert.deepEqual(dbKeys(t, await t.live()), want);
  const b = await t.kubectl(["-n", t.ns, "apply", "--server-side", "-f", t.withoutKeys]);
  assert.equal(b.code, 0, `the first server-side apply, without the keys: ${b.stderr}`);
  const kept = await t.live();
  t.log(`  owners after the switch to server-side: ${JSON.stringify(ownersOf(kept))}`);
  assert.deepEqual(dbKeys(t, kept), want, "server-side: the keys stay");
  assert.equal(kept.data?.LOG_LEVEL, "info");
}
