/**
 * Step live-objects-serve: the live objects run on the real binaries (./live-fleet.ts), what kwok cannot
 * show. Every replica comes up ready, which its script allows only once every login of the live auth file
 * logged in to PostgreSQL through the live ini's server TLS settings (prod: verify-full against the live
 * `postgres-ca`); each process runs, from its live pod's name, as the peer id the live `[peers]` gives that
 * pod's DNS name; a client verifying the pooler as the backend does (`sslmode=verify-full`, the live
 * `pgbouncer-ca`, the Service's name) gets the live certificate, and a plaintext one is refused; both
 * application logins are served on every replica; a cancel sent to another replica than the query's is
 * forwarded through the live `[peers]` and cancels it. The fleet keeps running for the steps that change
 * the live objects, until the scenario ends.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../../../stacks/stack-file";
import { run } from "../../../common";
import { configValue } from "../../../fleet/load";
import { PgClient, PgError } from "../../../harness";
import { sleep } from "../../../harness/proc";
import { APP_USERS, appPassword } from "../../fixtures";
import { type LiveFleet, startLiveFleet, whoAmI } from "./live-fleet";
import type { StackRun } from "./stack-run";
import { liveCertificate } from "./tls";
import { fleetVerifyScripts } from "./verify-commands";

/** How long a forwarded cancel may take to end the query (it ends in well under a second here). */
const CANCEL_BOUND_MS = 5_000;

export async function liveObjectsServe(r: StackRun): Promise<void> {
  const started = Date.now();
  const live = await startLiveFleet(r);
  r.log(
    `  the live objects serve on ${live.fleet.replicas().length} replicas, ready ${((Date.now() - started) / 1000).toFixed(1)} s after the start`,
  );
  await expectPeerIdentities(r, live);
  await expectTlsAndLogins(r, live);
  await expectCancelForwarded(r, live);
  await runFleetVerify(r, live);
}

/**
 * The runbook's Verify block "the pooler from the inside", on pod 0's replica: its port-forward replaced by
 * the replica's local port, the rest as printed (`vault kv get` answered by OpenBao's CLI, `bao`, which
 * takes the same arguments); SHOW POOLS and SHOW STATS as the stats user, with Vault's password.
 */
async function runFleetVerify(r: StackRun, live: LiveFleet): Promise<void> {
  const bin = path.join(r.world.dir, `vault-cli-${r.stack}`);
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, "vault"), '#!/bin/sh\nexec bao "$@"\n', { mode: 0o755 });
  for (const script of fleetVerifyScripts(r.stack, r.s, live.fleet.replica(0).port)) {
    r.log(`$ ${script.replaceAll("\n", "\n  ")}`);
    const res = await run("bash", ["-c", script], {
      cwd: PROJECT_DIR,
      env: { ...r.pulumi.env, PATH: `${bin}:${r.pulumi.env.PATH ?? ""}` },
      timeoutMs: 60_000,
    });
    assert.equal(res.code, 0, `the runbook's Verify block on the fleet:\n${res.stdout}${res.stderr}`);
    assert.match(res.stdout, /\bcl_active\b/, "SHOW POOLS printed");
    assert.match(res.stdout, /\btotal_xact_count\b/, "SHOW STATS printed");
    r.log(`  the runbook's SHOW POOLS / SHOW STATS block ran on ${live.fleet.replica(0).name}'s replica`);
  }
}

/** Each process's peer_id (SHOW CONFIG), computed by the live script from its live pod's name, is its pod's. */
async function expectPeerIdentities(r: StackRun, live: LiveFleet): Promise<void> {
  const ids: string[] = [];
  for (const x of live.fleet.replicas()) {
    const pod = live.pods.find((p) => p.ordinal === x.ordinal);
    assert.ok(pod && x.name === pod.name, `replica ${x.ordinal} runs as the live pod ${pod?.name}`);
    for (const p of x.processes) {
      const id = await configValue(p.socketDir, x.port, "peer_id");
      const entry = live.livePeers.get(id) ?? "";
      assert.match(
        entry,
        new RegExp(`^host=${pod.dnsName.replaceAll(".", "\\.")} port=\\d+$`),
        `process ${p.process} of ${pod.name} runs as peer ${id}, which the live [peers] names ${entry}`,
      );
      ids.push(id);
    }
  }
  assert.equal(new Set(ids).size, ids.length, `distinct peer ids: ${ids.join(", ")}`);
  r.log(`  peer ids run by the live script: ${ids.join(", ")}, each its own pod's in the live [peers]`);
}

async function expectTlsAndLogins(r: StackRun, live: LiveFleet): Promise<void> {
  const cert = await liveCertificate(r);
  const current = r.logins.current;
  const through = await whoAmI(live.conn(APP_USERS[current], appPassword(current, r.logins[current])));
  assert.equal(through.user, APP_USERS[current], `the current login through the balancer: ${through.error}`);
  assert.equal(through.serial?.toUpperCase(), cert.serial.toUpperCase(), "the live certificate is served");
  const plain = await whoAmI({
    ...live.conn(APP_USERS[current], appPassword(current, r.logins[current])),
    tls: { sslmode: "disable" },
  });
  assert.match(plain.error ?? "", /SSL required/, `a plaintext login is refused: ${JSON.stringify(plain)}`);
  for (const x of live.fleet.replicas()) {
    for (const login of ["a", "b"] as const) {
      if (login === "b" && !r.s.credentials.secondLogin) continue;
      const got = await whoAmI(live.conn(APP_USERS[login], appPassword(login, r.logins[login]), x.ordinal));
      assert.equal(got.user, APP_USERS[login], `${APP_USERS[login]} on ${x.name}: ${got.error}`);
    }
  }
  r.log(
    `  verify-full against the live pgbouncer-ca as ${r.pooler.host}: serial ${cert.serial}; plaintext refused; ` +
      `both logins on every replica`,
  );
}

/** A query on one replica, its cancel sent to another: forwarded by peering, the query is cancelled. */
async function expectCancelForwarded(r: StackRun, live: LiveFleet): Promise<void> {
  const replicas = live.fleet.replicas();
  if (replicas.length < 2) return;
  const current = r.logins.current;
  for (const [from, to] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const c = await PgClient.connect(
      live.conn(APP_USERS[current], appPassword(current, r.logins[current]), from),
      {
        applicationName: "e2e-cancel",
      },
    );
    try {
      const running = c.query("SELECT pg_sleep(30)").then(
        () => "completed",
        (e: unknown) => (e instanceof PgError ? e.code : String(e)),
      );
      await sleep(500);
      const sent = Date.now();
      await c.cancel({ host: "127.0.0.1", port: replicas[to].port });
      const outcome = await Promise.race([running, sleep(CANCEL_BOUND_MS).then(() => "still running")]);
      assert.equal(
        outcome,
        "57014",
        `a query on ${replicas[from].name}, its cancel sent to ${replicas[to].name}: cancelled (57014)`,
      );
      r.log(
        `  a query on ${replicas[from].name}, cancelled through ${replicas[to].name} in ${((Date.now() - sent) / 1000).toFixed(2)} s`,
      );
    } finally {
      c.close();
    }
  }
}
