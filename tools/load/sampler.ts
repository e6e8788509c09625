/**
 * Samples PgBouncer's admin console (`SHOW POOLS`, `SHOW STATS`) and PostgreSQL's `pg_stat_activity` over
 * persistent connections, so that sampling every half second costs no logins and no process starts.
 */
import type { Conn } from "../harness";
import { PgClient } from "../harness/pgwire";

/** One process's pool of the application database (`SHOW POOLS`, summed over users) and its totals. */
export interface ProcessSample {
  readonly clActive: number;
  readonly clWaiting: number;
  readonly svActive: number;
  readonly svIdle: number;
  readonly svUsed: number;
  readonly svLogin: number;
  /** Longest current client wait, ms. */
  readonly maxWaitMs: number;
  /** `SHOW STATS` totals of the database. */
  readonly xactCount: number;
  readonly queryCount: number;
  /** Total microseconds clients waited for a server. */
  readonly waitTimeUs: number;
}

export interface PoolSample {
  /** Milliseconds since the sampler opened. */
  readonly t: number;
  readonly processes: readonly ProcessSample[];
  /** Sums over processes (maxWaitMs: the maximum). */
  readonly total: ProcessSample;
}

const n = (v: string | undefined) => (v === undefined || v === "" ? 0 : Number(v));

function sumSamples(ps: readonly ProcessSample[]): ProcessSample {
  const keys = Object.keys(ps[0] ?? {}) as (keyof ProcessSample)[];
  const out = Object.fromEntries(keys.map((k) => [k, 0])) as Record<keyof ProcessSample, number>;
  for (const p of ps)
    for (const k of keys) out[k] = k === "maxWaitMs" ? Math.max(out[k], p[k]) : out[k] + p[k];
  return out;
}

export class PoolSampler {
  private readonly started = Date.now();
  private constructor(
    private readonly consoles: readonly Conn[],
    private clients: (PgClient | undefined)[],
    private readonly database: string,
  ) {}

  /** One console per PgBouncer process (each process's own unix socket when there are several). */
  static async open(consoles: readonly Conn[], database: string): Promise<PoolSampler> {
    const clients = await Promise.all(
      consoles.map((c) => PgClient.connect(c, { applicationName: "clipper-sampler" })),
    );
    return new PoolSampler(consoles, clients, database);
  }

  /** Samples every process; a broken console connection is reopened once, then the error is thrown. */
  async sample(): Promise<PoolSample> {
    const processes = await Promise.all(this.consoles.map((_, i) => this.sampleOne(i)));
    return { t: Date.now() - this.started, processes, total: sumSamples(processes) };
  }

  private async sampleOne(i: number): Promise<ProcessSample> {
    for (let attempt = 0; ; attempt++) {
      try {
        let c = this.clients[i];
        if (!c || c.closed) {
          c = await PgClient.connect(this.consoles[i], { applicationName: "clipper-sampler" });
          this.clients[i] = c;
        }
        const pools = (await c.records("SHOW POOLS")).filter((p) => p.database === this.database);
        const stats = (await c.records("SHOW STATS")).find((s) => s.database === this.database);
        const sum = (k: string) => pools.reduce((a, p) => a + n(p[k]), 0);
        return {
          clActive: sum("cl_active"),
          clWaiting: sum("cl_waiting"),
          svActive: sum("sv_active"),
          svIdle: sum("sv_idle"),
          svUsed: sum("sv_used"),
          svLogin: sum("sv_login"),
          maxWaitMs: Math.max(0, ...pools.map((p) => n(p.maxwait) * 1000 + n(p.maxwait_us) / 1000)),
          xactCount: n(stats?.total_xact_count),
          queryCount: n(stats?.total_query_count),
          waitTimeUs: n(stats?.total_wait_time),
        };
      } catch (e) {
        this.clients[i]?.close();
        this.clients[i] = undefined;
        if (attempt >= 1) throw e;
      }
    }
  }

  close(): void {
    for (const c of this.clients) c?.close();
    this.clients = [];
  }
}

/** PostgreSQL backends of one database, as `pg_stat_activity` shows them. */
export interface BackendSample {
  readonly t: number;
  readonly total: number;
  readonly active: number;
}

export class BackendSampler {
  private readonly started = Date.now();
  private constructor(
    private readonly client: PgClient,
    private readonly database: string,
  ) {}

  /** `superuser` must see every session (a superuser, or a member of pg_read_all_stats). */
  static async open(superuser: Conn, database: string): Promise<BackendSampler> {
    return new BackendSampler(
      await PgClient.connect(superuser, { applicationName: "clipper-sampler" }),
      database,
    );
  }

  async sample(): Promise<BackendSample> {
    const r = await this.client.query(
      `SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity ` +
        `WHERE backend_type = 'client backend' AND datname = '${this.database.replace(/'/g, "''")}' ` +
        `AND pid <> pg_backend_pid()`,
    );
    return { t: Date.now() - this.started, total: Number(r.rows[0][0]), active: Number(r.rows[0][1]) };
  }

  close(): void {
    this.client.close();
  }
}

/** Calls `sample` every `intervalMs` until stopped; errors are counted and kept, never thrown. */
export function sampleEvery<T>(
  intervalMs: number,
  sample: () => Promise<T>,
  onSample?: (s: T) => void,
): { stop(): Promise<{ samples: T[]; errors: string[] }> } {
  const samples: T[] = [];
  const errors: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = Date.now();
      try {
        const s = await sample();
        samples.push(s);
        onSample?.(s);
      } catch (e) {
        errors.push((e as Error).message);
      }
      const wait = intervalMs - (Date.now() - t0);
      if (running && wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples, errors };
    },
  };
}
