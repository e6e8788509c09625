/**
 * Cancel requests behind several PgBouncer processes on one port. A cancel request arrives on a new
 * connection, which the kernel hands to any of the processes; only the process that owns the client knows
 * its key. PgBouncer 1.19+ forwards it to the right peer (`peer_id`, `[peers]`); without peering it is lost.
 */
import { type PooledStack, sleep } from "../harness";
import { consolesOf } from "./local";
import { PgClient } from "../harness/pgwire";

export interface CancelProbe {
  readonly clients: number;
  /** Queries that ended with 57014 (canceling statement due to user request). */
  readonly cancelled: number;
  /** Queries that ran to completion: their cancel request was lost. */
  readonly lost: number;
  readonly other: readonly string[];
  /** Client connections per process, from each process's SHOW CLIENTS. */
  readonly spread: readonly number[];
  /**
   * Cancel requests sent on purpose to a process that does not own the client (over that process's own
   * unix socket): only peering delivers them. The rest go to the shared TCP port, as libpq sends them.
   */
  readonly sentToPeer: number;
  /** Of those, how many were delivered. */
  readonly deliveredViaPeer: number;
}

export interface CancelProbeOptions {
  /**
   * With several processes, send every `crossEvery`-th cancel to a process that does not own the client
   * instead of the port; 0 sends all to the port. @default 2 (every second one)
   */
  readonly crossEvery?: number;
}

/**
 * How long after its query a client sends the cancel: long enough for a new server connection's login and
 * the query to reach PostgreSQL on a busy machine (at 300 ms one of 16 was seen still on its way).
 */
export const CANCEL_AFTER_MS = 1000;

/**
 * `clients` connections through the shared port each start `SELECT pg_sleep(sleepSeconds)` and cancel it
 * {@link CANCEL_AFTER_MS} later, the way libpq does. Keep `clients` at or below the server cap of each
 * process (the kernel may give one process all of them), or waiting queries are not running yet.
 */
export async function probeCancels(
  stack: PooledStack,
  clients: number,
  sleepSeconds: number,
  opts: CancelProbeOptions = {},
): Promise<CancelProbe> {
  const crossEvery = opts.crossEvery ?? 2;
  const conns = await Promise.all(Array.from({ length: clients }, () => PgClient.connect(stack.pooled)));
  try {
    const owners = await ownersOf(stack, conns);
    const consoles = consolesOf(stack);
    const spread = consoles.map((_, i) => owners.filter((o) => o === i).length);
    const cross = conns.map((_, j) => consoles.length > 1 && crossEvery > 0 && j % crossEvery === 0);
    const sql = `SELECT pg_sleep(${sleepSeconds})`;
    const queries = conns.map((c) =>
      c.query(sql).then(
        () => "completed",
        (e: { code?: string; message: string }) => e.code ?? e.message,
      ),
    );
    await untilRunning(stack, sql, clients, sleepSeconds * 1000);
    const outcomes = await Promise.all(
      conns.map(async (c, j) => {
        const q = queries[j];
        if (cross[j]) {
          const peer = stack.pgbouncer.files[(owners[j] + 1) % consoles.length];
          await c.cancel({ host: peer.unixSocketDir, port: stack.pgbouncer.port });
        } else {
          await c.cancel(stack.pooled);
        }
        return q;
      }),
    );
    return {
      clients,
      cancelled: outcomes.filter((o) => o === "57014").length,
      lost: outcomes.filter((o) => o === "completed").length,
      other: outcomes.filter((o) => o !== "57014" && o !== "completed"),
      spread,
      sentToPeer: cross.filter(Boolean).length,
      deliveredViaPeer: outcomes.filter((o, j) => cross[j] && o === "57014").length,
    };
  } finally {
    for (const c of conns) c.close();
  }
}

/**
 * Waits until PostgreSQL runs `n` copies of `sql` (every client's query reached a server connection: with
 * TLS on both legs and a busy machine, growing the pool one server login at a time can take longer than
 * {@link CANCEL_AFTER_MS}), for at most `maxMs`, and at least {@link CANCEL_AFTER_MS} in total. Production
 * does not wait like this: PgBouncer drops a cancel for a query still queued for a server ("cancel request
 * for idle client", src/objects.c), which docs/tuning.md states as a limit; this probe tests the forwarding
 * of cancels to the process that runs the query, so it cancels running queries only.
 */
async function untilRunning(stack: PooledStack, sql: string, n: number, maxMs: number): Promise<void> {
  const started = Date.now();
  const text = sql.replace(/'/g, "''");
  while (Date.now() - started < maxMs) {
    const running = Number(
      await stack.postgres.psql(
        `SELECT count(*) FROM pg_stat_activity WHERE query = '${text}' AND state = 'active'`,
      ),
    );
    if (running >= n) break;
    await sleep(50);
  }
  const waited = Date.now() - started;
  if (waited < CANCEL_AFTER_MS) await sleep(CANCEL_AFTER_MS - waited);
}

/** For each connection, the index of the PgBouncer process that owns it (matched by its local TCP port). */
async function ownersOf(stack: PooledStack, conns: readonly PgClient[]): Promise<number[]> {
  const consoles = consolesOf(stack);
  const ports = await Promise.all(
    consoles.map(async (console) => {
      const c = await PgClient.connect(console, { applicationName: "clipper-cancel-probe" });
      try {
        const rows = await c.records("SHOW CLIENTS");
        return new Set(rows.filter((r) => r.database === stack.pooled.database).map((r) => Number(r.port)));
      } finally {
        c.close();
      }
    }),
  );
  return conns.map((c) => {
    const i = ports.findIndex((p) => p.has(c.localPort ?? -1));
    if (i < 0) throw new Error(`cancel probe: no PgBouncer process lists client port ${c.localPort}`);
    return i;
  });
}
