/**
 * Step bad-input: the mistakes a platform engineer makes, each shown by `pulumi preview` as one message
 * (no stack trace, no "unhandled exception") naming the key, value, object or address and the fix, in at
 * most 1.5x the time of the slower of two good previews just before and after, with nothing in the cluster
 * changed:
 * - the Vault secret deleted: the mount, path and keys;
 * - Vault unreachable (`providers.vaultAddress` on a closed port): its address, after the Vault provider's
 *   retries ({@link vaultRetryWaitBound} more);
 * - an impossible pool budget: the budget's sum, and the offline render prints the very same message;
 * - the shell set up for the other stack (its kubeconfig's current context, then its `VAULT_ADDR`): what the
 *   stack expects and what the shell has (the local world only: it has the two contexts and addresses);
 * - objects the stack names but that are not there (the PKI role, and prod's CA ConfigMap): each object and
 *   its setting (the preflight);
 * - the backend's Deployment renamed while routed: the program's refusal with the two updates, and the
 *   renamed Deployment that does not exist.
 * The snapshot taken first is the steady state the destroy step compares with.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import * as vault from "@pulumi/vault";
import { ROLLING_SURGE, settingsPoolBudget } from "../../../../components/pgbouncer";
import { serverLoginChecks } from "../../../../components/credentials";
import type { StackSettings } from "../../../../stacks/settings";
import { listStacks } from "../../../../stacks/stack-file";
import { renderProcess } from "../../../render/spawn";
import { freePort } from "../../../harness/proc";
import type { PulumiResult } from "../../clients/pulumi";
import { kvDelete } from "../../clients/vault";
import { writeVaultSecret } from "../../fixtures";
import { type Snapshot, type StackRun, snapshot, tail } from "./stack-run";

/** A failing preview may take this many times a good one (issue 18: a mistake reported in seconds). */
export const FAILING_PREVIEW_RATIO = 1.5;

const PREVIEW = ["preview", "--policy-pack", "policy"];

/** The Vault API client's `MaxRetryWait`: the longest wait before its first retry, in seconds. */
const VAULT_MAX_RETRY_WAIT_SECONDS = 1.5;

/**
 * The longest the Vault provider waits between its tries of a request that found no Vault, in seconds. It
 * retries a refused connection `maxRetries` times (the Vault API client's retry policy), and before the
 * k-th retry waits k x 1 to 1.5 s (its `LinearJitterBackoff` between `MinRetryWait` 1 s and `MaxRetryWait`
 * 1.5 s); measured here: 3.8 s more than with no retries for 2, 11.4 s for 4. These waits are the same on
 * a loaded and an idle machine, so they are added to the bound, not scaled with it: production waits them
 * too (docs/runbook.md, Deploy). One round, not one per read: the provider sets its client up under a lock,
 * one request at a time, so the program makes its other Vault reads only once the credentials' read found
 * a Vault (stacks/environment.ts). Before it did, staging's three reads waited three rounds (15.3 and
 * 16.6 s failing previews against 4.8 s good ones, in CI on 2026-12-06).
 */
export function vaultRetryWaitBound(maxRetries: number): number {
  return (VAULT_MAX_RETRY_WAIT_SECONDS * maxRetries * (maxRetries + 1)) / 2;
}

/**
 * The retries the stacks' Vault provider makes: what the Vault SDK gives for this environment
 * (`VAULT_MAX_RETRIES`, else its default). The program's explicit provider takes the SDK's, and a stack file
 * may set no `vault:maxRetries` (the program refuses the default providers' keys).
 */
export function stackVaultMaxRetries(): number {
  return vault.config.maxRetries;
}

export async function badInput(r: StackRun): Promise<void> {
  const steady = (r.measured.steady = await snapshot(r));
  const goodPreview = () => r.pulumi.ok(["preview", "--expect-no-changes", "--policy-pack", "policy"]);
  // Good previews of the same run just before and just after the mistakes (the last one with everything
  // restored): the other lanes of the run load the machine unevenly, so the slower of the two is the
  // measure of a good preview at that moment.
  const before = await goodPreview();
  const retries = stackVaultMaxRetries();
  const failed: [mistake: string, res: PulumiResult, retryWaits: number][] = [
    ["the Vault secret deleted", await secretDeleted(r, steady), 0],
    ["Vault unreachable", await vaultUnreachable(r, steady, retries), vaultRetryWaitBound(retries)],
    ["an impossible pool budget", await impossibleBudget(r, steady), 0],
    ...(await otherStacksShell(r, steady)).map((x): [string, PulumiResult, number] => [...x, 0]),
    ["objects the stack names missing", await referencesMissing(r, steady), 0],
    ["the backend's Deployment renamed while routed", await renamedWhileRouted(r, steady), 0],
  ];
  const after = await goodPreview();
  const good = Math.max(before.seconds, after.seconds);
  for (const [mistake, res, waits] of failed) {
    const retryWaits = waits > 0 ? ` + the Vault provider's retry waits ${waits.toFixed(1)} s` : "";
    r.log(
      `  ${mistake}: the preview failed in ${res.seconds.toFixed(1)} s (good ones: ` +
        `${before.seconds.toFixed(1)} s before, ${after.seconds.toFixed(1)} s after${retryWaits})`,
    );
    assert.ok(
      res.seconds <= FAILING_PREVIEW_RATIO * good + waits,
      `${mistake}: the failing preview took ${res.seconds.toFixed(1)} s, more than ${FAILING_PREVIEW_RATIO} x ` +
        `the good previews' ${good.toFixed(1)} s${retryWaits}`,
    );
  }
}

/** The smallest per-process server cap that breaks the stack's pool budget (derived, never hard-coded). */
export function impossibleServerCap(s: StackSettings): number {
  const pods = s.workload.replicas + ROLLING_SURGE;
  const available = s.database.maxConnections - s.database.reservedConnections;
  return Math.floor(available / (pods * s.workload.processesPerPod)) - serverLoginChecks(s.credentials) + 1;
}

/**
 * The program's message in a failed preview's output: the text of the one `error:` diagnostic of the stack,
 * with its continuation lines (the CLI indents them by the `error:` line's indent, which is taken off). Fails when the output holds a stack trace, an unhandled exception, or more
 * than one error.
 */
export function programError(output: string): string {
  assert.doesNotMatch(output, /unhandled exception/i, `no "unhandled exception":\n${tail(output)}`);
  assert.doesNotMatch(output, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace:\n${tail(output)}`);
  const diagnostics = output.slice(output.indexOf("Diagnostics:"));
  assert.ok(output.includes("Diagnostics:"), `the preview reports its diagnostics:\n${tail(output)}`);
  const errors = [...diagnostics.matchAll(/^( *)error: (.*(?:\n\1 {2}.*)*)/gm)];
  assert.equal(errors.length, 1, `one error, not ${errors.length}:\n${tail(diagnostics)}`);
  const [, indent, text] = errors[0];
  return text
    .split("\n")
    .map((l, i) => (i === 0 ? l : l.slice(indent.length)))
    .join("\n")
    .trim();
}

/** A failed preview that left the cluster as it was; returns the result and the program's message. */
async function failingPreview(
  r: StackRun,
  steady: Snapshot,
  what: string,
  env?: Record<string, string>,
): Promise<[PulumiResult, string]> {
  const res = await r.pulumi.run(PREVIEW, env ? { env } : {});
  assert.notEqual(res.code, 0, `pulumi preview must fail with ${what}`);
  const message = programError(res.output);
  assert.deepEqual(await snapshot(r), steady, `nothing changed in the cluster (${what})`);
  return [res, message];
}

/** The secret deleted in Vault: the preview fails naming where it read and each key; then the secret is back. */
async function secretDeleted(r: StackRun, steady: Snapshot): Promise<PulumiResult> {
  const c = r.s.credentials;
  await kvDelete(r.vault, c.vaultMount, c.vaultPath);
  const [res, message] = await failingPreview(r, steady, "the secret deleted");
  for (const word of [`mount "${c.vaultMount}"`, `path "${c.vaultPath}"`, `key "${c.appPasswordKey}"`]) {
    assert.ok(message.includes(word), `the message names ${word}:\n${message}`);
  }
  await writeVaultSecret(r.vault, r.s, r.logins);
  return res;
}

/**
 * The stack pinned to a Vault on a port nothing listens on (`providers.vaultAddress`, and `VAULT_ADDR` with
 * it): the message names that address and what to check. The provider's retries are the stack's
 * (`VAULT_MAX_RETRIES` pins them against the caller's environment).
 */
async function vaultUnreachable(r: StackRun, steady: Snapshot, maxRetries: number): Promise<PulumiResult> {
  const addr = `http://127.0.0.1:${await freePort()}`;
  const pinned = r.world.shell(r.stack).vaultAddr;
  await r.pulumi.configSet("providers.vaultAddress", addr);
  const [res, message] = await failingPreview(r, steady, "Vault unreachable", {
    VAULT_ADDR: addr,
    VAULT_MAX_RETRIES: String(maxRetries),
  });
  await r.pulumi.configSet("providers.vaultAddress", pinned);
  assert.ok(message.includes(`the Vault at ${addr}`), `the message names the address ${addr}:\n${message}`);
  assert.ok(message.includes("check that Vault is reachable"), `the message says what to check:\n${message}`);
  return res;
}

/**
 * A preview from the shell set up for the other stack (issue 24, item 1): first its kubeconfig, whose
 * current context is the other stack's, then its `VAULT_ADDR`. Each is refused before anything is read,
 * naming what this stack expects and what the shell has. Only where the world has a context and a Vault
 * address per stack (the local one).
 */
async function otherStacksShell(r: StackRun, steady: Snapshot): Promise<[string, PulumiResult][]> {
  const other = listStacks().find((st) => st !== r.stack);
  if (other === undefined || !r.world.local.kube || !r.world.local.vault) {
    r.log("  the other stack's shell: skipped (a cluster from KUBECONFIG or a Vault from VAULT_ADDR)");
    return [];
  }
  const mine = r.world.shell(r.stack);
  const theirs = r.world.shell(other);
  const [byContext, contextMessage] = await failingPreview(r, steady, "the other stack's context", {
    KUBECONFIG: theirs.env.KUBECONFIG,
  });
  for (const word of [
    "providers.kubernetesContext",
    `expects the kubeconfig context "${mine.context}"`,
    `is "${theirs.context}"`,
    `kubectl config use-context ${mine.context}`,
  ]) {
    assert.ok(contextMessage.includes(word), `the message names ${word}:\n${contextMessage}`);
  }
  const [byVault, vaultMessage] = await failingPreview(r, steady, "the other stack's VAULT_ADDR", {
    VAULT_ADDR: theirs.vaultAddr,
  });
  for (const word of [
    "providers.vaultAddress",
    `expects the Vault at ${mine.vaultAddr}`,
    `VAULT_ADDR is ${theirs.vaultAddr}`,
  ]) {
    assert.ok(vaultMessage.includes(word), `the message names ${word}:\n${vaultMessage}`);
  }
  return [
    ["the other stack's kubeconfig context", byContext],
    ["the other stack's VAULT_ADDR", byVault],
  ];
}

/**
 * Objects the stack names but that are not there (issue 27, item 8): the PKI role it issues its certificate
 * with, and, where it reads PostgreSQL's CA from a ConfigMap (prod), that ConfigMap. One message names each
 * object and its setting; then the settings are back.
 */
async function referencesMissing(r: StackRun, steady: Snapshot): Promise<PulumiResult> {
  const cert = r.s.tls.certificate;
  const ca = r.s.tls.serverCa;
  type Change = readonly [key: string, bad: string, back: string, word: string];
  const changed: Change[] = [
    ...(cert?.source === "vault-pki"
      ? [
          [
            "tls.certificate.role",
            "no-such-role",
            cert.role,
            `Vault PKI mount "${cert.mount}" role "no-such-role"`,
          ] as const,
        ]
      : []),
    ...(ca?.source === "configmap"
      ? [
          [
            "tls.serverCa.name",
            `${ca.name}-missing`,
            ca.name,
            `ConfigMap ${r.ns}/${ca.name}-missing`,
          ] as const,
        ]
      : []),
  ];
  assert.ok(changed.length > 0, `the stack ${r.stack} names nothing the preflight checks`);
  for (const [k, bad] of changed) await r.pulumi.configSet(k, bad);
  const [res, message] = await failingPreview(r, steady, "objects the stack names missing");
  for (const [k, , back] of changed) await r.pulumi.configSet(k, back);
  for (const [k, , , word] of changed) {
    assert.ok(message.includes(word), `the message names ${word}:\n${message}`);
    assert.ok(message.includes(`clipper-pgbouncer:${k}`), `the message names the setting ${k}:\n${message}`);
  }
  return res;
}

/**
 * `backend.deploymentName` changed while the backend is routed to the pooler (issue 24, item 8): refused
 * with the program's own words and the two updates, before Pulumi's "protected" error could come; the
 * renamed Deployment does not exist, and the same message says so (the preflight).
 */
async function renamedWhileRouted(r: StackRun, steady: Snapshot): Promise<PulumiResult> {
  const b = r.s.backend;
  const renamed = `${b.deploymentName}-renamed`;
  await r.pulumi.configSet("backend.deploymentName", renamed);
  const [res, message] = await failingPreview(r, steady, "a rename while routed");
  await r.pulumi.configSet("backend.deploymentName", b.deploymentName);
  for (const word of [
    "cannot be renamed while the backend is routed to the pooler",
    `clipper-pgbouncer:backend.deploymentName is now "${renamed}" (was "${b.deploymentName}")`,
    "first `pulumi config set --path backend.route direct` with the old names",
    `Deployment ${r.bns}/${renamed} (clipper-pgbouncer:backend.deploymentName): does not exist`,
  ]) {
    assert.ok(message.includes(word), `the message says ${word}:\n${message}`);
  }
  return res;
}

/**
 * `pool.maxDbConnections` beyond the budget: the preview fails with the sum, the offline render with the
 * same message; then the setting is back.
 */
async function impossibleBudget(r: StackRun, steady: Snapshot): Promise<PulumiResult> {
  const { s } = r;
  const tooMany = impossibleServerCap(s);
  await r.pulumi.configSet("pool.maxDbConnections", String(tooMany));
  const broken = settingsPoolBudget({ ...s, pool: { ...s.pool, maxDbConnections: tooMany } });
  const [res, message] = await failingPreview(r, steady, `pool.maxDbConnections ${tooMany}`);
  assert.ok(message.includes(broken.arithmetic), `the message gives the sum:\n${message}`);
  assert.ok(message.includes("pool.maxDbConnections"), `the message names the key:\n${message}`);
  await r.pulumi.configSet("pool.maxDbConnections", String(s.pool.maxDbConnections));
  const render = await renderProcess(r.stack, path.join(r.world.dir, "bad-render", r.stack), {
    "pool.maxDbConnections": String(tooMany),
  });
  assert.notEqual(render.code, 0, "the offline render refuses the same budget");
  assert.equal(render.stderr.trim(), `error: ${message}`, "the render prints the preview's message");
  return res;
}
