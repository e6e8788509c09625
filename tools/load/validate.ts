/**
 * The load validation (the spec's validate_pgbouncer.sh): N pgbench clients through a PgBouncer for a
 * duration, `SHOW POOLS` / `SHOW STATS` sampled as it runs, then judged by `criteria.ts`.
 */
import type { Conn } from "../harness";
import type { StackSettings } from "../../stacks/settings";
import { type Criteria, type Verdict, atBaseline, criteriaFor, evaluate } from "./criteria";
import { type PgbenchResult, type Workload, runPgbench } from "./pgbench";
import { type PoolSample, PoolSampler, sampleEvery } from "./sampler";

export interface ValidationTarget {
  /** For the report: "local harness: 1 PgBouncer 1.25.2 process on ..." or the port-forward. */
  readonly description: string;
  /** The application user through the pooler. */
  readonly pooled: Conn;
  /** The stats user on the admin console, one per PgBouncer process that the clients reach. */
  readonly consoles: readonly Conn[];
}

export interface ValidationOptions {
  readonly settings: StackSettings;
  readonly target: ValidationTarget;
  readonly clients: number;
  readonly durationSeconds: number;
  readonly workload: Workload;
  /** Transactions per second per client (`pgbench --rate` = clients x this); 0 runs flat out. */
  readonly ratePerClient: number;
  /**
   * Seconds of the same load before the judged run, so that the judged run starts with a warm pool:
   * PgBouncer opens server connections as clients arrive (`min_pool_size` does not pre-warm an idle pool),
   * and a cold pool queues the first burst of clients while it logs in. The warm-up's peak is reported.
   * @default 5
   */
  readonly warmupSeconds?: number;
  /**
   * Judge a cold start (with `warmupSeconds: 0`): `serverLogin` logs in to PostgreSQL as PgBouncer does (TLS,
   * SCRAM) and closes; the run times five of them one after the other from the burst's start, on the same
   * busy cores, and their median, or PgBouncer's own pace of logins as the samples show the pool grow when
   * that is longer, bounds how long the burst's clients may wait while the pool grows (criteria.ts,
   * `coldStartBoundMs`, `loginPaceMs`). @default unset: the warm criteria from the first sample
   */
  readonly coldStart?: { readonly serverLogin: () => Promise<void> };
  /** @default 500 */
  readonly sampleIntervalMs?: number;
  /** How long the pool may take to return to its baseline after the load. @default 15 s */
  readonly settleSeconds?: number;
  /** Receives one progress line per pgbench progress report (every second). */
  readonly onProgress?: (line: string, elapsedSeconds: number) => void;
}

export interface ValidationReport {
  readonly options: Omit<ValidationOptions, "onProgress" | "settings" | "target">;
  readonly target: string;
  readonly criteria: Criteria;
  readonly verdict: Verdict;
  readonly pgbench: Omit<PgbenchResult, "stdout" | "stderr">;
  readonly baseline: PoolSample;
  readonly after: PoolSample;
  readonly samples: readonly PoolSample[];
  readonly samplingErrors: readonly string[];
  /** Transactions PgBouncer counted for the database during the load (`SHOW STATS`). */
  readonly pooledTransactions: number;
  /** Average wait for a server connection per transaction, ms (`SHOW STATS`). */
  readonly avgWaitMs: number;
  /** The warm-up, not judged: its peaks with a cold pool, and whether its pgbench ended well. */
  readonly warmup?: {
    readonly peakWaiting: number;
    readonly peakActive: number;
    readonly pgbenchOk: boolean;
  };
}

export async function runValidation(o: ValidationOptions): Promise<ValidationReport> {
  const criteria = criteriaFor(o.settings.pool, o.settings.monitoring.exhaustionServerConnections);
  const db = o.target.pooled.database;
  const sampler = await PoolSampler.open(o.target.consoles, db);
  try {
    const rate = o.ratePerClient > 0 ? o.ratePerClient * o.clients : 0;
    let warmup: ValidationReport["warmup"];
    const warmupSeconds = o.warmupSeconds ?? 5;
    if (o.coldStart && warmupSeconds > 0) {
      throw new Error("load validation: a cold start is judged without a warm-up (warmupSeconds 0)");
    }
    if (warmupSeconds > 0) {
      const wloop = sampleEvery(o.sampleIntervalMs ?? 500, () => sampler.sample());
      o.onProgress?.(`warm-up: ${warmupSeconds} s of the same load, not judged`, 0);
      const w = await runPgbench({
        conn: o.target.pooled,
        clients: o.clients,
        durationSeconds: warmupSeconds,
        workload: o.workload,
        rate,
      });
      const ws = await wloop.stop();
      warmup = {
        peakWaiting: Math.max(0, ...ws.samples.map((x) => x.total.clWaiting)),
        peakActive: Math.max(0, ...ws.samples.flatMap((x) => x.processes.map((p) => p.svActive))),
        pgbenchOk: w.ok,
      };
      const t0 = Date.now();
      while (Date.now() - t0 < 10_000 && (await sampler.sample()).total.clActive > 0) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const baseline = await sampler.sample();
    let latest = baseline;
    const loop = sampleEvery(
      o.sampleIntervalMs ?? 500,
      () => sampler.sample(),
      (s) => (latest = s),
    );
    // during the burst: as long as a login to PostgreSQL takes while the pool grows
    const loginTimes = o.coldStart
      ? (async (login: () => Promise<void>) => {
          const times: number[] = [];
          for (let i = 0; i < 5; i++) {
            const t = performance.now();
            await login();
            times.push(performance.now() - t);
          }
          return times.sort((a, b) => a - b)[2];
        })(o.coldStart.serverLogin)
      : undefined;
    loginTimes?.catch(() => undefined);
    const pgbench = await runPgbench({
      conn: o.target.pooled,
      clients: o.clients,
      durationSeconds: o.durationSeconds,
      workload: o.workload,
      rate,
      onProgress: (p) =>
        o.onProgress?.(
          `${String(Math.round(p.seconds)).padStart(4)}s/${o.durationSeconds}s  tps ${p.tps.toFixed(0).padStart(6)}  ` +
            `lat ${p.latencyMs.toFixed(1).padStart(6)} ms  clients active ${latest.total.clActive} ` +
            `waiting ${latest.total.clWaiting}  servers busy ${Math.max(...latest.processes.map((x) => x.svActive))}` +
            `/${criteria.activeBelow} idle ${latest.total.svIdle}  maxwait ${latest.total.maxWaitMs.toFixed(0)} ms`,
          p.seconds,
        ),
    });
    const { samples, errors } = await loop.stop();
    const settleLimit = (o.settleSeconds ?? 15) * 1000;
    const t0 = Date.now();
    let after = await sampler.sample();
    while (!atBaseline(baseline.total, after.total) && Date.now() - t0 < settleLimit) {
      await new Promise((r) => setTimeout(r, 250));
      after = await sampler.sample();
    }
    const settled = atBaseline(baseline.total, after.total);
    const verdict = evaluate(criteria, {
      ...(o.coldStart
        ? {
            coldStart: {
              clients: o.clients,
              processes: o.target.consoles.length,
              poolSize: o.settings.pool.defaultPoolSize,
              serverLoginMs: (await loginTimes) ?? 0,
            },
          }
        : {}),
      baseline,
      samples,
      after,
      settled,
      settleMs: Date.now() - t0,
      pgbench,
      samplingErrors: errors,
    });
    const pooledTransactions = after.total.xactCount - baseline.total.xactCount;
    const avgWaitMs =
      pooledTransactions > 0
        ? (after.total.waitTimeUs - baseline.total.waitTimeUs) / 1000 / pooledTransactions
        : 0;
    const pgbenchSummary = omit(pgbench, ["stdout", "stderr"]);
    const options = omit(o, ["onProgress", "settings", "target"]);
    return {
      options,
      target: o.target.description,
      criteria,
      verdict,
      pgbench: pgbenchSummary,
      baseline,
      after,
      samples,
      samplingErrors: errors,
      pooledTransactions,
      avgWaitMs,
      ...(warmup ? { warmup } : {}),
    };
  } finally {
    sampler.close();
  }
}

function omit<T extends object, K extends keyof T>(obj: T, keys: readonly K[]): Omit<T, K> {
  const out = { ...obj };
  for (const k of keys) delete out[k];
  return out;
}

/** The report a person reads. */
export function formatReport(r: ValidationReport, stack: string): string {
  const o = r.options;
  const pg = r.pgbench;
  const lines = [
    "",
    `PgBouncer load validation - stack ${stack}`,
    `  target    ${r.target}`,
    `  load      ${o.clients} clients, ${o.durationSeconds} s, workload ${o.workload}, ` +
      (o.ratePerClient > 0
        ? `${o.ratePerClient} tx/s per client (${o.ratePerClient * o.clients} tx/s)`
        : "flat out"),
    `  pgbench   ${pg.tps.toFixed(0)} tps, latency ${pg.latencyAvgMs.toFixed(2)} ms` +
      (pg.latencyStddevMs !== undefined ? ` (stddev ${pg.latencyStddevMs.toFixed(2)})` : "") +
      `, ${pg.transactions} transactions, exit code ${pg.exitCode}`,
    ...(r.warmup
      ? [
          `  warm-up   ${o.warmupSeconds ?? 5} s, not judged: cold pool peaks cl_waiting ${r.warmup.peakWaiting}, ` +
            `sv_active ${r.warmup.peakActive}; pgbench ${r.warmup.pgbenchOk ? "ok" : "FAILED"}`,
        ]
      : []),
    `  pooler    ${r.pooledTransactions} transactions counted by SHOW STATS, average wait for a server ` +
      `${r.avgWaitMs.toFixed(3)} ms, ${r.samples.length} samples`,
    "",
    ...r.verdict.checks.map((c) => `  [${c.ok ? "PASS" : "FAIL"}] ${c.name}\n         ${c.detail}`),
    "",
    `  RESULT: ${r.verdict.pass ? "PASS" : "FAIL"}`,
  ];
  if (!r.verdict.pass && pg.errors.length)
    lines.push("", "  pgbench errors:", ...pg.errors.map((e) => `    ${e}`));
  return lines.join("\n") + "\n";
}
