/**
 * npm run bench -- --stack prod [--rounds 5 --duration 15] [--markdown FILE --json FILE]
 *
 * pgbench straight to PostgreSQL and through the stack's rendered pooler on the local harness, in the same
 * run: a client-count matrix (50, 100, 500, and direct at 150 to show PostgreSQL refusing), then rounds that
 * each run direct and every pooler variant (server caps per process, one or two processes) in a rotating
 * order, so that every variant gets a ratio against a direct run of the same round.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import {
  type Conn,
  type PooledStack,
  type PostgresHandle,
  exitOnSignals,
  localPgBouncerVersion,
  startPooledStack,
  startPostgres,
} from "../harness";
import type { StackSettings } from "../../stacks/settings";
import { Args, runMain } from "./args";
import { type PgbenchResult, type Workload, initPgbench, runPgbench } from "./pgbench";
import { BackendSampler, sampleEvery } from "./sampler";
import { listStacks, loadStackSettings } from "./stack-settings";

/** A pooler variant: server cap per process and processes on one port. */
export interface Variant {
  readonly cap: number;
  readonly processes: number;
}

export function variantLabel(v: Variant | undefined): string {
  return v ? (v.processes === 1 ? `pooled ${v.cap}` : `pooled ${v.processes}x${v.cap}`) : "direct";
}

/** The stack's settings with the pool resized to `v` (every other setting kept). */
export function variantSettings(base: StackSettings, v: Variant): StackSettings {
  return {
    ...base,
    workload: { ...base.workload, processesPerPod: v.processes },
    pool: {
      ...base.pool,
      maxDbConnections: v.cap,
      defaultPoolSize: Math.min(base.pool.defaultPoolSize, v.cap),
      minPoolSize: Math.min(base.pool.minPoolSize, v.cap),
    },
  };
}

export interface BenchResult {
  readonly section: "matrix" | "rounds";
  readonly round?: number;
  readonly label: string;
  readonly variant?: Variant;
  readonly workload: Workload;
  readonly clients: number;
  readonly durationSeconds: number;
  readonly tps: number;
  readonly latencyAvgMs: number;
  readonly latencyStddevMs?: number;
  readonly transactions: number;
  readonly failed: number;
  readonly abortedClients: number;
  readonly connectionErrors: number;
  readonly exitCode: number;
  readonly ok: boolean;
  readonly firstError?: string;
  /** Most client backends of the database PostgreSQL had at once (pg_stat_activity, every 250 ms). */
  readonly backendsMax: number;
  readonly backendsActiveMax: number;
  /** `uptime` load averages (1, 5, 15 min) when the run started. */
  readonly loadavg: readonly number[];
  readonly startedAt: string;
}

interface Env {
  readonly pg: PostgresHandle;
  readonly base: StackSettings;
  readonly direct: Conn;
  readonly password: string;
  readonly warmupSeconds: number;
  readonly log: (line: string) => void;
}

async function runOne(
  env: Env,
  c: {
    section: BenchResult["section"];
    round?: number;
    variant?: Variant;
    workload: Workload;
    clients: number;
  },
  durationSeconds: number,
): Promise<BenchResult> {
  let stack: PooledStack | undefined;
  try {
    if (c.variant) {
      stack = await startPooledStack(variantSettings(env.base, c.variant), {
        postgres: env.pg,
        appPassword: env.password,
      });
    }
    const conn = stack ? stack.pooled : env.direct;
    if (env.warmupSeconds > 0) {
      await runPgbench({
        conn,
        clients: c.clients,
        durationSeconds: env.warmupSeconds,
        workload: c.workload,
      });
    }
    const backends = await BackendSampler.open(env.pg.conn(), env.base.database.name);
    const loadavg = os.loadavg();
    const startedAt = new Date().toISOString();
    let r: PgbenchResult;
    let samples: { total: number; active: number }[];
    try {
      const loop = sampleEvery(250, () => backends.sample());
      r = await runPgbench({ conn, clients: c.clients, durationSeconds, workload: c.workload });
      samples = (await loop.stop()).samples;
    } finally {
      backends.close();
    }
    const result: BenchResult = {
      section: c.section,
      ...(c.round !== undefined ? { round: c.round } : {}),
      label: variantLabel(c.variant),
      ...(c.variant ? { variant: c.variant } : {}),
      workload: c.workload,
      clients: c.clients,
      durationSeconds,
      tps: r.tps,
      latencyAvgMs: r.latencyAvgMs,
      latencyStddevMs: r.latencyStddevMs,
      transactions: r.transactions,
      failed: r.failed,
      abortedClients: r.abortedClients,
      connectionErrors: r.connectionErrors,
      exitCode: r.exitCode,
      ok: r.ok,
      ...(r.errors.length ? { firstError: r.errors[0] } : {}),
      backendsMax: Math.max(0, ...samples.map((s) => s.total)),
      backendsActiveMax: Math.max(0, ...samples.map((s) => s.active)),
      loadavg,
      startedAt,
    };
    env.log(
      `${c.section}${c.round !== undefined ? ` round ${c.round}` : ""}: ${result.label.padEnd(14)} ${c.workload.padEnd(11)} ` +
        `${String(c.clients).padStart(3)} clients: ${r.tps.toFixed(0).padStart(5)} tps, ${r.latencyAvgMs.toFixed(2)} ms, ` +
        `exit ${r.exitCode}, backends <= ${result.backendsMax}, load ${loadavg.map((l) => l.toFixed(2)).join(" ")}` +
        (r.ok ? "" : `  [${r.errors[0] ?? "failed"}]`),
    );
    return result;
  } finally {
    await stack?.stop();
  }
}

// ---- statistics and tables -------------------------------------------------------------------------------

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function stddev(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
}

export interface RatioSummary {
  readonly label: string;
  readonly workload: Workload;
  readonly ratios: readonly number[];
  readonly mean: number;
  readonly stddev: number;
  readonly min: number;
  readonly max: number;
  readonly tpsMean: number;
  readonly latencyMean: number;
  readonly backendsMax: number;
  readonly allOk: boolean;
}

/** Per variant and workload: ratio of its tps to the direct run of the same round. */
export function roundRatios(results: readonly BenchResult[]): RatioSummary[] {
  const rounds = results.filter((r) => r.section === "rounds");
  const keys = [...new Set(rounds.filter((r) => r.variant).map((r) => `${r.workload}|${r.label}`))];
  return keys.map((k) => {
    const [workload, label] = k.split("|") as [Workload, string];
    const mine = rounds.filter((r) => r.workload === workload && r.label === label);
    const ratios = mine.flatMap((r) => {
      const d = rounds.find((x) => x.round === r.round && x.workload === workload && !x.variant);
      return d && d.tps > 0 ? [r.tps / d.tps] : [];
    });
    return {
      label,
      workload,
      ratios,
      mean: mean(ratios),
      stddev: stddev(ratios),
      min: Math.min(...ratios),
      max: Math.max(...ratios),
      tpsMean: mean(mine.map((r) => r.tps)),
      latencyMean: mean(mine.map((r) => r.latencyAvgMs)),
      backendsMax: Math.max(...mine.map((r) => r.backendsMax)),
      allOk: mine.every((r) => r.ok),
    };
  });
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "-");
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "-");
const load = (l: readonly number[]) => l.map((x) => x.toFixed(2)).join(" ");

export function markdown(results: readonly BenchResult[], meta: Record<string, string>): string {
  const out: string[] = [];
  out.push(
    "| setting | value |",
    "|---|---|",
    ...Object.entries(meta).map(([k, v]) => `| ${k} | ${v} |`),
    "",
  );
  const matrix = results.filter((r) => r.section === "matrix");
  if (matrix.length) {
    out.push(
      "#### Matrix: direct vs the rendered pooler",
      "",
      "| workload | clients | target | tps | latency ms (sd) | failed / aborted / conn. errors | exit | PG backends max (active) | load avg at start |",
      "|---|---:|---|---:|---:|---|---:|---:|---|",
    );
    for (const r of matrix) {
      out.push(
        `| ${r.workload} | ${r.clients} | ${r.label} | ${f0(r.tps)} | ${f2(r.latencyAvgMs)} (${f2(r.latencyStddevMs ?? NaN)}) | ` +
          `${r.failed} / ${r.abortedClients} / ${r.connectionErrors} | ${r.exitCode} | ${r.backendsMax} (${r.backendsActiveMax}) | ${load(r.loadavg)} |`,
      );
    }
    const errs = matrix.filter((r) => !r.ok && r.firstError);
    if (errs.length) {
      out.push("", "First error of each failing run:", "");
      for (const r of errs)
        out.push(`- ${r.workload}, ${r.clients} clients, ${r.label}: \`${r.firstError}\``);
    }
    out.push("");
  }
  const summary = roundRatios(results);
  if (summary.length) {
    out.push(
      "#### Rounds: every variant against the direct run of the same round, 50 clients",
      "",
      "| workload | variant | ratio mean | sd | min | max | n | tps mean | latency ms | PG backends max | all ok |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    );
    for (const s of summary) {
      out.push(
        `| ${s.workload} | ${s.label} | ${f2(s.mean)} | ${f2(s.stddev)} | ${f2(s.min)} | ${f2(s.max)} | ${s.ratios.length} | ` +
          `${f0(s.tpsMean)} | ${f2(s.latencyMean)} | ${s.backendsMax} | ${s.allOk ? "yes" : "NO"} |`,
      );
    }
    out.push("", "Every run of the rounds (tps; load average at its start):", "");
    const rounds = results.filter((r) => r.section === "rounds");
    const labels = [...new Set(rounds.map((r) => r.label))];
    out.push(
      `| workload | round | ${labels.join(" | ")} |`,
      `|---|---:|${labels.map(() => "---:").join("|")}|`,
    );
    const groups = [...new Set(rounds.map((r) => `${r.workload}|${r.round}`))];
    for (const g of groups) {
      const [w, round] = g.split("|");
      const cells = labels.map((l) => {
        const r = rounds.find((x) => x.workload === w && String(x.round) === round && x.label === l);
        return r ? `${f0(r.tps)}${r.ok ? "" : " (FAILED)"} @${r.loadavg[0].toFixed(1)}` : "";
      });
      out.push(`| ${w} | ${round} | ${cells.join(" | ")} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

// ---- the command -----------------------------------------------------------------------------------------

const USAGE = `usage: npm run bench -- --stack <${listStacks().join("|")}> [options]

  --sections LIST       matrix,rounds (default both)
  --clients LIST        matrix client counts through the pooler (default 50,100,500)
  --direct-clients LIST matrix client counts straight to PostgreSQL (default 50,100,150,500)
  --matrix-duration S   seconds per matrix run (default 20)
  --rounds N            rounds of the variant comparison (default 5)
  --duration S          seconds per round run (default 15)
  --caps LIST           server caps per process for one process (default 5,10,25,50)
  --two-process-caps L  server caps per process with two processes on one port (default 25,5)
  --warmup S            seconds of the same load before each measured run, not measured (default 3)
  --workloads LIST      tpcb,select-only (default both)
  --scale N             pgbench scale (default 10)
  --max-connections N   PostgreSQL max_connections (default 100, PostgreSQL's own default)
  --markdown FILE       write the tables as Markdown
  --json FILE           write every run as JSON`;

if (require.main === module) {
  runMain(USAGE, async () => {
    const a = new Args(process.argv.slice(2));
    const stackName = a.string("stack");
    const sections = a.string("sections", "matrix,rounds").split(",");
    const clients = a.list("clients", [50, 100, 500], 1, 10000);
    const directClients = a.list("direct-clients", [50, 100, 150, 500], 1, 10000);
    const matrixDuration = a.int("matrix-duration", 20, 1, 3600);
    const rounds = a.int("rounds", 5, 1, 100);
    const duration = a.int("duration", 15, 1, 3600);
    const caps = a.list("caps", [5, 10, 25, 50], 1, 10000);
    const twoCaps = a.list("two-process-caps", [25, 5], 1, 10000);
    const warmupSeconds = a.int("warmup", 3, 0, 600);
    const workloads = a.string("workloads", "tpcb,select-only").split(",") as Workload[];
    const scale = a.int("scale", 10, 1, 1000);
    const maxConnections = a.int("max-connections", 100, 10, 10000);
    const md = a.optional("markdown");
    const json = a.optional("json");
    a.done();
    const base = loadStackSettings(stackName);
    exitOnSignals();
    const log = (l: string) => process.stdout.write(`${l}\n`);
    const pg = await startPostgres({ maxConnections, fsync: false });
    const results: BenchResult[] = [];
    try {
      const password = "bench-" + Math.random().toString(36).slice(2);
      // the role and database, created once through the harness, then used with a known password
      const probe = await startPooledStack(base, { postgres: pg, appPassword: password });
      const direct = probe.direct;
      await probe.stop();
      await initPgbench(direct, scale);
      const env: Env = { pg, base, direct, password, warmupSeconds, log };
      const prod: Variant = { cap: base.pool.maxDbConnections, processes: base.workload.processesPerPod };
      if (sections.includes("matrix")) {
        for (const w of workloads) {
          const counts = [...new Set([...clients, ...directClients])].sort((x, y) => x - y);
          for (const n of counts) {
            if (directClients.includes(n))
              results.push(await runOne(env, { section: "matrix", workload: w, clients: n }, matrixDuration));
            if (clients.includes(n))
              results.push(
                await runOne(
                  env,
                  { section: "matrix", variant: prod, workload: w, clients: n },
                  matrixDuration,
                ),
              );
          }
        }
      }
      if (sections.includes("rounds")) {
        const variants: (Variant | undefined)[] = [
          undefined,
          ...caps.map((cap) => ({ cap, processes: 1 })),
          ...twoCaps.map((cap) => ({ cap, processes: 2 })),
        ];
        for (let round = 1; round <= rounds; round++) {
          for (const w of workloads) {
            // rotate the order every round so no variant always runs first or last
            const order = variants.map((_, i) => variants[(i + round - 1) % variants.length]);
            for (const v of order)
              results.push(
                await runOne(
                  env,
                  { section: "rounds", round, variant: v, workload: w, clients: 50 },
                  duration,
                ),
              );
          }
        }
      }
    } finally {
      await pg.stop();
    }
    const meta = {
      date: new Date().toISOString(),
      machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), shared with other engineers' test runs`,
      PostgreSQL: `15, max_connections ${maxConnections}, fsync off, on 127.0.0.1 (TCP, SCRAM)`,
      PgBouncer: `${await localPgBouncerVersion()}, the ${stackName} stack's rendered ini (max_prepared_statements dropped: 1.18 lacks it)`,
      pgbench: `scale ${scale}, -M simple, -j ${os.cpus().length}, warm-up ${warmupSeconds} s before each run`,
    };
    if (md) fs.writeFileSync(md, markdown(results, meta));
    if (json) fs.writeFileSync(json, JSON.stringify({ meta, results }, null, 2) + "\n");
    process.stdout.write(`\n${markdown(results, meta)}\n`);
    return 0;
  });
}
