/**
 * Clients that hold their connections through the fleet's balancer and run transactions, as a backend's
 * connection pool does (back to back, or each after a pause, as a pool's connections idle between requests),
 * counting what each sees: refused logins, failed transactions, closed connections. Bounded: every client
 * stops at `stop()`, and a transaction that takes over 30 s fails.
 */
import { adminCommand } from "../harness";
import type { Conn } from "../harness/postgres";
import { PgClient } from "../harness/pgwire";
import { sleep } from "../harness/proc";

export interface LoadCounts {
  readonly clients: number;
  readonly transactions: number;
  /** Logins refused or broken (new connections: the first ones, and a closed connection's replacement). */
  readonly refusedLogins: string[];
  readonly failedTransactions: string[];
  /** Connections the server side closed under a client. */
  readonly closedConnections: number;
}

/** What the clients saw between two readings of {@link Load.counts}: `after`'s counts less `before`'s. */
export function countsSince(after: LoadCounts, before: LoadCounts): LoadCounts {
  return {
    clients: after.clients,
    transactions: after.transactions - before.transactions,
    refusedLogins: after.refusedLogins.slice(before.refusedLogins.length),
    failedTransactions: after.failedTransactions.slice(before.failedTransactions.length),
    closedConnections: after.closedConnections - before.closedConnections,
  };
}

export interface Load {
  counts(): LoadCounts;
  /** Stops every client (each after its transaction) and closes the connections. */
  stop(): Promise<LoadCounts>;
}

export interface LoadShape {
  /** Each transaction's `pg_sleep`. */
  readonly txSeconds: number;
  /**
   * A client's idle time after each transaction, its connection held: 0 for back to back. An idle client
   * holds no server connection (transaction pooling), so a pause lets many clients stay connected with the
   * few transactions a test's 2 cores can serve beside the rest of npm test.
   */
  readonly pauseSeconds?: number;
}

/**
 * `clients` connections to `conn`, each running `BEGIN; SELECT pg_sleep(txSeconds); COMMIT` in a loop, with
 * `pauseSeconds` between two. Resolves once every client has logged in (a refused first login is counted and
 * retried after 100 ms). A connection closed under a client is counted, and the client logs in again (as a
 * driver's pool does).
 */
export async function startLoad(
  conn: Conn,
  clients: number,
  { txSeconds, pauseSeconds = 0 }: LoadShape,
): Promise<Load> {
  let running = true;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  /** A client's idle time, its connection held; cut short by stop(), which then need not wait it out. */
  const idle = (seconds: number) => Promise.race([sleep(seconds * 1000), stopped]);
  let transactions = 0;
  let closedConnections = 0;
  const refusedLogins: string[] = [];
  const failedTransactions: string[] = [];
  const login = async (): Promise<PgClient | undefined> => {
    while (running) {
      try {
        return await PgClient.connect(conn, { applicationName: "fleet-load", timeoutMs: 15_000 });
      } catch (e) {
        refusedLogins.push((e as Error).message);
        await sleep(100);
      }
    }
    return undefined;
  };
  const first = await Promise.all(Array.from({ length: clients }, login));
  const loops = first.map(async (c0) => {
    let c = c0;
    // paused clients start spread over one pause, as a pool's connections are not all busy at once
    if (pauseSeconds > 0) await idle(Math.random() * pauseSeconds);
    while (running && c) {
      try {
        await withTimeout(c.query(`BEGIN; SELECT pg_sleep(${txSeconds}); COMMIT`), 30_000);
        transactions++;
      } catch (e) {
        failedTransactions.push((e as Error).message);
        if (c.closed) {
          closedConnections++;
          c = await login();
        } else {
          // an error inside the block leaves it aborted until ROLLBACK
          await c.query("ROLLBACK").catch(() => undefined);
        }
      }
      // the next request comes after the pause, whatever the last one's outcome
      if (pauseSeconds > 0) await idle(pauseSeconds);
    }
    c?.close();
  });
  const counts = (): LoadCounts => ({
    clients,
    transactions,
    refusedLogins: [...refusedLogins],
    failedTransactions: [...failedTransactions],
    closedConnections,
  });
  return {
    counts,
    async stop() {
      running = false;
      stop();
      await Promise.all(loops);
      return counts();
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`transaction took over ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** SHOW CONFIG values of a fleet process, over its unix socket: one console command for all of `keys`. */
export async function configValues(dir: string, port: number, keys: readonly string[]): Promise<string[]> {
  const lines = (await adminCommand({ unixSocketDir: dir, port }, "SHOW CONFIG")).split("\n");
  return keys.map((key) => {
    const line = lines.find((l) => l.startsWith(`${key}|`));
    if (!line) throw new Error(`SHOW CONFIG has no ${key}`);
    return line.split("|")[1];
  });
}

/** One SHOW CONFIG value of a fleet process, over its unix socket. */
export async function configValue(dir: string, port: number, key: string): Promise<string> {
  return (await configValues(dir, port, [key]))[0];
}
