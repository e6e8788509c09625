/**
 * Cancel requests behind several PgBouncer processes on one port. A cancel request arrives on a new
 * connection, which the kernel hands to any of the processes; only the process that owns the client knows
 * its key. PgBouncer 1.19+ forwards it to the right peer (`peer_id`, `[peers]`); without peering it is lost.
 */
import { type PooledStack, sleep } from "../harness";
import { consolesOf } from "./local";
import { PgClient } from "./pgwire";
import { PoolSampler } from "./sampler";

export interface CancelProbe {
  readonly clients: number;
  /** Queries that ended with 57014 (canceling statement due to user request). */
  readonly cancelled: number;
  /** Queries that ran to completion: their cancel request was lost. */
  readonly lost: number;
  readonly other: readonly string[];
  /** Client connections per process, as SHOW POOLS saw them. */
  readonly spread: readonly number[];
}

/**
 * `clients` connections each start `SELECT pg_sleep(sleepSeconds)` and cancel it 300 ms later, the way
 * libpq does. Keep `clients` at or below the server cap, or waiting queries are not running yet.
 */
export async function probeCancels(
  stack: PooledStack,
  clients: number,
  sleepSeconds: number,
): Promise<CancelProbe> {
  const conns = await Promise.all(Array.from({ length: clients }, () => PgClient.connect(stack.pooled)));
  try {
    const sampler = await PoolSampler.open(consolesOf(stack), stack.pooled.database);
    const spread = (await sampler.sample()).processes.map((p) => p.clActive);
    sampler.close();
    const outcomes = await Promise.all(
      conns.map(async (c) => {
        const q = c.query(`SELECT pg_sleep(${sleepSeconds})`).then(
          () => "completed",
          (e: { code?: string; message: string }) => e.code ?? e.message,
        );
        await sleep(300);
        await c.cancel(stack.pooled);
        return q;
      }),
    );
    return {
      clients,
      cancelled: outcomes.filter((o) => o === "57014").length,
      lost: outcomes.filter((o) => o === "completed").length,
      other: outcomes.filter((o) => o !== "57014" && o !== "completed"),
      spread,
    };
  } finally {
    for (const c of conns) c.close();
  }
}
