/**
 * The prepared-statement run that release-behaviour.test.ts and tls/pooler-tls.test.ts give PgBouncer:
 * pgbench -M prepared, select-only. 60 clients, more than prod's 50 server connections, so that a statement
 * prepared once on a server connection is reused by other clients; a thread each (-j), as a pgbench thread
 * blocks while preparing and, with fewer threads than clients, can stall on the pool. 3 s at 600 transactions
 * a second: the claims are about every client's statements, not throughput, and a run flat out took every
 * CPU-second the other tests left it (2026-12-07, release-behaviour: 1,565 transactions, 60 client parses and
 * 10 server parses, the pool near min_pool_size; flat out 55,098 transactions and 45 server parses).
 */
import type { PgbenchOptions } from "../../load/pgbench";

export const PREPARED_RUN = {
  clients: 60,
  threads: 60,
  durationSeconds: 3,
  workload: "select-only",
  protocol: "prepared",
  rate: 600,
} as const satisfies Omit<PgbenchOptions, "conn">;
