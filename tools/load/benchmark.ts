/**
 * npm run bench -- --stack prod [--fsync on,off --rounds 5 --duration 15] [--markdown FILE --json FILE]
 *
 * pgbench straight to PostgreSQL and through the stack's rendered pooler on the local harness (the
 * PgBouncer release the stacks deploy, its ini unchanged), in one run, for each PostgreSQL durability
 * setting (fsync on: as production runs; fsync off: the CPU-bound stress case):
 * - a client-count matrix (50, 100, 500 through the pooler; direct at 150 and 500 shows PostgreSQL refusing),
 *   with PostgreSQL's backends against the server cap;
 * - rounds at 50 clients: per workload and protocol (`-M simple`, `-M prepared`), direct and every pooler
 *   variant in a rotating order, so every variant gets a ratio against the direct run of the same round.
 * Every run records the load average and the pooler's CPU (from /proc/<pid>/stat of its processes).
 * `--tls on` (the default) runs the stack's rendered TLS on both of PgBouncer's legs, PostgreSQL serving TLS and
 * pgbench asking libpq's default `sslmode=prefer` (so direct runs are TLS too); `--tls off` runs plaintext
 * throughout (both legs `disable`, PostgreSQL without `ssl`, pgbench `sslmode=disable`), as the runs of
 * before issue 16 did. Each run checks in `pg_stat_ssl` that it is what it says.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import {
  type Conn,
  type PooledStack,
  type PostgresHandle,
  exitOnSignals,
  localPgBouncerVersion,
  psql,
  startPooledStack,
  startPostgres,
} from "../harness";
import type { StackSettings } from "../../stacks/settings";
import { type CpuUse, measureCpu } from "./cpu";
import { type PgbenchResult, type Workload, initPgbench, runPgbench } from "./pgbench";
import { BackendSampler, sampleEvery } from "./sampler";
import { listStacks } from "../../stacks/stack-file";
import { loadStackSettings } from "../../stacks/settings";
import { Args, UsageError, runMain } from "../common";

export type Protocol = "simple" | "prepared";

/** `on`: TLS as the stack renders it (and PostgreSQL's for direct runs); `off`: plaintext throughout. */
export type BenchTls = "on" | "off";

/** What a run's TLS setting means, for the tables' settings. */
export function tlsText(tls: BenchTls, settings: StackSettings): string {
  return tls === "on"
    ? `on: PgBouncer's client leg ${settings.tls.clientSslMode} and server leg ${settings.tls.serverSslMode} as ` +
        "the stack renders them, PostgreSQL ssl=on, pgbench sslmode=prefer (direct runs over TLS too)"
    : "off: PgBouncer's client and server legs disable, PostgreSQL without ssl, pgbench sslmode=disable (plaintext throughout)";
}
export const PROTOCOLS: readonly Protocol[] = ["simple", "prepared"];

/** A pooler variant: server cap per process and processes on one port. */
export interface Variant {
  readonly cap: number;
  readonly processes: number;
}

export function variantLabel(v: Variant | undefined): string {
  return v ? (v.processes === 1 ? `pooled ${v.cap}` : `pooled ${v.processes}x${v.cap}`) : "direct";
}

/**
 * A variant from the command line: `prod` (the stack's own pool), `C` (one process with a server cap of C)
 * or `NxC` (N processes, cap C each).
 */
export function parseVariant(text: string, base: StackSettings): Variant {
  if (text === "prod" || text === "stack") {
    return { cap: base.pool.maxDbConnections, processes: base.workload.processesPerPod };
  }
  const m = /^(?:(\d+)x)?(\d+)$/.exec(text);
  const processes = Number(m?.[1] ?? 1);
  const cap = Number(m?.[2]);
  if (!m || processes < 1 || processes > 16 || cap < 1) {
    throw new UsageError(`--variants: "${text}" is not prod, C or NxC (N processes of 1-16, cap C >= 1)`);
  }
  return { cap, processes };
}

/** The stack's settings with the pool resized to `v` (every other setting kept), rendered by the product. */
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
  /** PostgreSQL's fsync: on is durable (as production runs), off is CPU-bound. */
  readonly fsync: boolean;
  readonly round?: number;
  readonly label: string;
  readonly variant?: Variant;
  readonly workload: Workload;
  readonly protocol: Protocol;
  readonly clients: number;
  readonly threads: number;
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
  /** Server connections the pooler may open (cap per process x processes); undefined for direct. */
  readonly serverCap?: number;
  /** CPU of the PgBouncer processes and of the machine during the measured run. */
  readonly cpu: CpuUse;
  /** Load averages (1, 5, 15 min) when the run started. */
  readonly loadavg: readonly number[];
  readonly startedAt: string;
}

interface Env {
  readonly pg: PostgresHandle;
  readonly fsync: boolean;
  readonly tls: BenchTls;
  readonly base: StackSettings;
  readonly direct: Conn;
  readonly password: string;
  readonly warmupSeconds: number;
  readonly log: (line: string) => void;
}

/** `-j`: the client count for prepared runs (a pgbench thread blocks while preparing), else the cores. */
export function threadsFor(protocol: Protocol, clients: number): number {
  return protocol === "prepared" ? clients : Math.max(1, Math.min(clients, os.cpus().length));
}

async function runOne(
  env: Env,
  c: {
    section: BenchResult["section"];
    round?: number;
    variant?: Variant;
    workload: Workload;
    protocol: Protocol;
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
        tls: env.tls === "on" ? "rendered" : "off",
      });
    }
    const conn = stack ? stack.pooled : env.direct;
    const threads = threadsFor(c.protocol, c.clients);
    const bench = { conn, clients: c.clients, threads, workload: c.workload, protocol: c.protocol };
    if (env.warmupSeconds > 0) await runPgbench({ ...bench, durationSeconds: env.warmupSeconds });
    const backends = await BackendSampler.open(env.pg.conn(), env.base.database.name);
    const loadavg = os.loadavg();
    const startedAt = new Date().toISOString();
    let r: PgbenchResult;
    let samples: { total: number; active: number }[];
    let cpu: CpuUse;
    try {
      const loop = sampleEvery(250, () => backends.sample());
      const meter = measureCpu(stack ? stack.pgbouncer.pids() : []);
      r = await runPgbench({ ...bench, durationSeconds });
      cpu = meter.stop();
      samples = (await loop.stop()).samples;
    } finally {
      backends.close();
    }
    const result: BenchResult = {
      section: c.section,
      fsync: env.fsync,
      ...(c.round !== undefined ? { round: c.round } : {}),
      label: variantLabel(c.variant),
      ...(c.variant ? { variant: c.variant, serverCap: c.variant.cap * c.variant.processes } : {}),
      workload: c.workload,
      protocol: c.protocol,
      clients: c.clients,
      threads,
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
      cpu,
      loadavg,
      startedAt,
    };
    env.log(
      `fsync ${env.fsync ? "on " : "off"} ${c.section}${c.round !== undefined ? ` round ${c.round}` : ""}: ` +
        `${result.label.padEnd(14)} ${c.workload.padEnd(11)} ${c.protocol.padEnd(8)} ` +
        `${String(c.clients).padStart(3)} clients: ${r.tps.toFixed(0).padStart(5)} tps, ${r.latencyAvgMs.toFixed(2)} ms, ` +
        `exit ${r.exitCode}, backends <= ${result.backendsMax}, pooler ${pct(cpu.processCores)} of a core, ` +
        `load ${load(loadavg)}` +
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
  readonly fsync: boolean;
  readonly label: string;
  readonly workload: Workload;
  readonly protocol: Protocol;
  /** Variant tps / direct tps of the same round, one per pair. */
  readonly ratios: readonly number[];
  readonly mean: number;
  readonly stddev: number;
  readonly min: number;
  readonly max: number;
  readonly tpsMean: number;
  readonly tpsStddev: number;
  readonly directTpsMean: number;
  readonly directTpsStddev: number;
  readonly latencyMean: number;
  readonly backendsMax: number;
  readonly serverCap?: number;
  /** Mean over the runs: the pooler's processes together, and its busiest process, in cores. */
  readonly poolerCores: number;
  readonly poolerMaxProcessCores: number;
  readonly machineBusyCores: number;
  /** Mean 1-minute load average at the start of the variant's runs and of their direct pairs. */
  readonly loadMean: number;
  readonly allOk: boolean;
}

const key = (r: Pick<BenchResult, "fsync" | "workload" | "protocol">) =>
  `${r.fsync ? "on" : "off"}|${r.workload}|${r.protocol}`;

/** Per fsync setting, workload, protocol and variant: its tps against the direct run of the same round. */
export function roundRatios(results: readonly BenchResult[]): RatioSummary[] {
  const rounds = results.filter((r) => r.section === "rounds");
  const groups = [...new Set(rounds.filter((r) => r.variant).map((r) => `${key(r)}|${r.label}`))];
  return groups.map((g) => {
    const mine = rounds.filter((r) => `${key(r)}|${r.label}` === g);
    const pairs = mine.flatMap((r) => {
      const d = rounds.find((x) => x.round === r.round && key(x) === key(r) && !x.variant);
      return d && d.tps > 0 ? [{ r, d }] : [];
    });
    const ratios = pairs.map((p) => p.r.tps / p.d.tps);
    const first = mine[0];
    return {
      fsync: first.fsync,
      label: first.label,
      workload: first.workload,
      protocol: first.protocol,
      ratios,
      mean: mean(ratios),
      stddev: stddev(ratios),
      min: Math.min(...ratios),
      max: Math.max(...ratios),
      tpsMean: mean(mine.map((r) => r.tps)),
      tpsStddev: stddev(mine.map((r) => r.tps)),
      directTpsMean: mean(pairs.map((p) => p.d.tps)),
      directTpsStddev: stddev(pairs.map((p) => p.d.tps)),
      latencyMean: mean(mine.map((r) => r.latencyAvgMs)),
      backendsMax: Math.max(...mine.map((r) => r.backendsMax)),
      ...(first.serverCap !== undefined ? { serverCap: first.serverCap } : {}),
      poolerCores: mean(mine.map((r) => r.cpu.processCores)),
      poolerMaxProcessCores: mean(mine.map((r) => r.cpu.maxProcessCores)),
      machineBusyCores: mean(mine.map((r) => r.cpu.machineBusyCores)),
      loadMean: mean([...pairs.map((p) => p.r.loadavg[0]), ...pairs.map((p) => p.d.loadavg[0])]),
      allOk: pairs.every((p) => p.r.ok && p.d.ok),
    };
  });
}

export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

/**
 * The issue's targets, from one run: pooled >= 1.0x direct TPC-B at 50 clients on durable PostgreSQL (the
 * stack's own pool), >= 0.9x select-only on the CPU-bound case (the best variant), and 500 clients through
 * the stack's pool with 0 errors and PostgreSQL backends within the cap. `met` is undefined when the run
 * did not measure it.
 */
export function targets(results: readonly BenchResult[], prodLabel: string): TargetCheck[] {
  const summary = roundRatios(results);
  const out: TargetCheck[] = [];
  for (const protocol of PROTOCOLS) {
    const s = summary.find(
      (x) => x.fsync && x.workload === "tpcb" && x.protocol === protocol && x.label === prodLabel,
    );
    out.push({
      target: `${prodLabel} >= 1.0x direct, TPC-B, 50 clients, fsync on, -M ${protocol}`,
      measured: s ? `${f2(s.mean)}x (sd ${f2(s.stddev)}, n ${s.ratios.length})` : "not run",
      met: s ? s.mean >= 1.0 && s.allOk : undefined,
    });
  }
  for (const protocol of PROTOCOLS) {
    const cands = summary.filter((x) => !x.fsync && x.workload === "select-only" && x.protocol === protocol);
    const best = cands.sort((a, b) => b.mean - a.mean)[0];
    out.push({
      target: `best variant >= 0.9x direct, select-only, 50 clients, fsync off, -M ${protocol}`,
      measured: best
        ? `${best.label}: ${f2(best.mean)}x (sd ${f2(best.stddev)}, n ${best.ratios.length}); pooler ` +
          `${pct(best.poolerCores)} of a core (busiest process ${pct(best.poolerMaxProcessCores)}), machine ` +
          `${f2(best.machineBusyCores)} of ${os.cpus().length} cores busy`
        : "not run",
      met: best ? best.mean >= 0.9 && best.allOk : undefined,
    });
  }
  for (const fsync of [true, false]) {
    const big = results.filter(
      (r) => r.section === "matrix" && r.fsync === fsync && r.label === prodLabel && r.clients >= 500,
    );
    const errors = big.reduce((a, r) => a + r.failed + r.abortedClients + r.connectionErrors, 0);
    const within = big.every((r) => r.serverCap !== undefined && r.backendsMax <= r.serverCap);
    out.push({
      target: `500 clients through ${prodLabel}, fsync ${fsync ? "on" : "off"}: 0 errors, PostgreSQL backends <= the cap`,
      measured: big.length
        ? big
            .map(
              (r) =>
                `${r.workload} -M ${r.protocol}: ${f0(r.tps)} tps, exit ${r.exitCode}, ${r.failed + r.abortedClients + r.connectionErrors} errors, backends ${r.backendsMax} / cap ${r.serverCap}`,
            )
            .join("; ")
        : "not run",
      met: big.length ? errors === 0 && within && big.every((r) => r.ok) : undefined,
    });
  }
  return out;
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "-");
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "-");
const pct = (cores: number) => (Number.isFinite(cores) ? `${(cores * 100).toFixed(0)} %` : "-");
const load = (l: readonly number[]) => l.map((x) => x.toFixed(2)).join(" ");
const fsyncName = (on: boolean) => (on ? "fsync on (durable, as production runs)" : "fsync off (CPU-bound)");

export function markdown(
  results: readonly BenchResult[],
  meta: Record<string, string>,
  prodLabel?: string,
): string {
  const out: string[] = [];
  out.push(
    "| setting | value |",
    "|---|---|",
    ...Object.entries(meta).map(([k, v]) => `| ${k} | ${v} |`),
    "",
  );
  if (prodLabel) {
    const checks = targets(results, prodLabel);
    out.push("#### Targets", "", "| target | measured | met |", "|---|---|---|");
    for (const t of checks) {
      out.push(`| ${t.target} | ${t.measured} | ${t.met === undefined ? "-" : t.met ? "yes" : "NO"} |`);
    }
    out.push("");
  }
  for (const fsync of [true, false]) {
    const matrix = results.filter((r) => r.section === "matrix" && r.fsync === fsync);
    if (matrix.length) {
      out.push(
        `#### Matrix, ${fsyncName(fsync)}: direct vs the rendered pooler`,
        "",
        "| workload | protocol | clients | target | tps | latency ms (sd) | failed / aborted / conn. errors | exit | PG backends max (active) / cap | pooler CPU, % of a core | load avg at start |",
        "|---|---|---:|---|---:|---:|---|---:|---:|---:|---|",
      );
      for (const r of matrix) {
        out.push(
          `| ${r.workload} | ${r.protocol} | ${r.clients} | ${r.label} | ${f0(r.tps)} | ${f2(r.latencyAvgMs)} (${f2(r.latencyStddevMs ?? NaN)}) | ` +
            `${r.failed} / ${r.abortedClients} / ${r.connectionErrors} | ${r.exitCode} | ${r.backendsMax} (${r.backendsActiveMax}) / ${r.serverCap ?? "-"} | ` +
            `${r.variant ? pct(r.cpu.processCores) : "-"} | ${load(r.loadavg)} |`,
        );
      }
      const errs = matrix.filter((r) => !r.ok && r.firstError);
      if (errs.length) {
        out.push("", "First error of each failing run:", "");
        for (const r of errs)
          out.push(`- ${r.workload} -M ${r.protocol}, ${r.clients} clients, ${r.label}: \`${r.firstError}\``);
      }
      out.push("");
    }
    const summary = roundRatios(results).filter((s) => s.fsync === fsync);
    if (summary.length) {
      out.push(
        `#### Rounds, ${fsyncName(fsync)}: every variant against the direct run of the same round`,
        "",
        "| workload | protocol | variant | ratio mean | sd | min | max | pairs | tps mean (sd) | direct tps mean (sd) | latency ms | PG backends max / cap | pooler CPU, % of a core (busiest process) | machine busy cores | load avg (1 min) mean | all ok |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
      );
      for (const s of summary) {
        out.push(
          `| ${s.workload} | ${s.protocol} | ${s.label} | ${f2(s.mean)} | ${f2(s.stddev)} | ${f2(s.min)} | ${f2(s.max)} | ${s.ratios.length} | ` +
            `${f0(s.tpsMean)} (${f0(s.tpsStddev)}) | ${f0(s.directTpsMean)} (${f0(s.directTpsStddev)}) | ${f2(s.latencyMean)} | ` +
            `${s.backendsMax} / ${s.serverCap ?? "-"} | ${pct(s.poolerCores)} (${pct(s.poolerMaxProcessCores)}) | ` +
            `${f2(s.machineBusyCores)} | ${f2(s.loadMean)} | ${s.allOk ? "yes" : "NO"} |`,
        );
      }
      out.push("", "Every run of the rounds (tps; 1-minute load average at its start):", "");
      const rounds = results.filter((r) => r.section === "rounds" && r.fsync === fsync);
      const labels = [...new Set(rounds.map((r) => r.label))];
      out.push(
        `| workload | protocol | round | ${labels.join(" | ")} |`,
        `|---|---|---:|${labels.map(() => "---:").join("|")}|`,
      );
      const groups = [...new Set(rounds.map((r) => `${r.workload}|${r.protocol}|${r.round}`))];
      for (const g of groups) {
        const [w, p, round] = g.split("|");
        const cells = labels.map((l) => {
          const r = rounds.find(
            (x) => x.workload === w && x.protocol === p && String(x.round) === round && x.label === l,
          );
          return r ? `${f0(r.tps)}${r.ok ? "" : " (FAILED)"} @${r.loadavg[0].toFixed(1)}` : "";
        });
        out.push(`| ${w} | ${p} | ${round} | ${cells.join(" | ")} |`);
      }
      out.push("");
    }
  }
  return out.join("\n");
}

/**
 * The run is what it says: PostgreSQL sees TLS (or not) on a direct connection as pgbench makes it, and on the
 * pooler's server connection.
 */
async function checkTls(stack: PooledStack, tls: BenchTls): Promise<void> {
  const on = tls === "on";
  const sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
  for (const [leg, conn, want] of [
    ["direct", stack.direct, on],
    ["PgBouncer's server leg", stack.pooled, on && stack.settings.tls.serverSslMode !== "disable"],
  ] as const) {
    const ssl = await psql(conn, sql);
    if (ssl !== (want ? "t" : "f")) {
      throw new Error(`bench: --tls ${tls}, but PostgreSQL reports ssl=${ssl} on the ${leg}`);
    }
  }
}

// ---- the command -----------------------------------------------------------------------------------------

const USAGE = `usage: npm run bench -- --stack <${listStacks().join("|")}> [options]

  --fsync LIST          PostgreSQL fsync settings, each a full run: on (durable), off (CPU-bound)
                        (default on,off)
  --sections LIST       matrix,rounds (default both)
  --clients LIST        matrix client counts through the stack's pool (default 50,100,500)
  --direct-clients LIST matrix client counts straight to PostgreSQL (default 50,100,150,500)
  --matrix-duration S   seconds per matrix run (default 20)
  --matrix-protocols L  protocols of the matrix (default simple)
  --rounds N            rounds (alternating pairs) of the variant comparison (default 5)
  --duration S          seconds per round run (default 15)
  --round-clients N     clients of every round run (default 50)
  --variants LIST       pooler variants of the rounds: prod (the stack's pool), C (one process, server cap
                        C) or NxC (N processes on one port, cap C each) (default prod,2x5)
  --protocols LIST      protocols of the rounds: simple,prepared (default both)
  --warmup S            seconds of the same load before each measured run, not measured (default 3)
  --workloads LIST      tpcb,select-only (default both)
  --scale N             pgbench scale (default 10)
  --max-connections N   PostgreSQL max_connections (default 100, PostgreSQL's own default)
  --tls on|off          on: PgBouncer's client and server legs as the stack renders them, PostgreSQL serving
                        TLS, pgbench sslmode=prefer; off: plaintext throughout (both legs disable, PostgreSQL
                        without ssl, pgbench sslmode=disable), as the runs of before issue 16 (default on)
  --markdown FILE       write the tables as Markdown
  --json FILE           write every run as JSON`;

function protocolList(a: Args, name: string, def: string): Protocol[] {
  const list = a.string(name, def).split(",") as Protocol[];
  for (const p of list)
    if (!PROTOCOLS.includes(p)) throw new UsageError(`--${name}: unknown protocol "${p}"`);
  return list;
}

if (require.main === module) {
  runMain(USAGE, async () => {
    const a = new Args(process.argv.slice(2));
    const stackName = a.string("stack");
    const fsyncs = a
      .string("fsync", "on,off")
      .split(",")
      .map((s) => {
        if (s !== "on" && s !== "off") throw new UsageError(`--fsync: "${s}" is not on or off`);
        return s === "on";
      });
    const sections = a.string("sections", "matrix,rounds").split(",");
    const clients = a.list("clients", [50, 100, 500], 1, 10000);
    const directClients = a.list("direct-clients", [50, 100, 150, 500], 1, 10000);
    const matrixDuration = a.int("matrix-duration", 20, 1, 3600);
    const matrixProtocols = protocolList(a, "matrix-protocols", "simple");
    const rounds = a.int("rounds", 5, 1, 100);
    const duration = a.int("duration", 15, 1, 3600);
    const roundClients = a.int("round-clients", 50, 1, 10000);
    const variantTexts = a.string("variants", "prod,2x5").split(",");
    const protocols = protocolList(a, "protocols", "simple,prepared");
    const warmupSeconds = a.int("warmup", 3, 0, 600);
    const workloads = a.string("workloads", "tpcb,select-only").split(",") as Workload[];
    const scale = a.int("scale", 10, 1, 1000);
    const maxConnections = a.int("max-connections", 100, 10, 10000);
    const tls = a.oneOf<BenchTls>("tls", "on", ["on", "off"]);
    const md = a.optional("markdown");
    const json = a.optional("json");
    a.done();
    const base = loadStackSettings(stackName);
    const variants = variantTexts.map((t) => parseVariant(t, base));
    const prod = parseVariant("prod", base);
    exitOnSignals();
    const log = (l: string) => process.stdout.write(`${l}\n`);
    const results: BenchResult[] = [];
    const started = Date.now();
    for (const fsync of fsyncs) {
      const pg = await startPostgres({
        maxConnections,
        fsync,
        ...(tls === "off" ? { tls: false as const } : {}),
      });
      try {
        const password = "bench-" + Math.random().toString(36).slice(2);
        // the role and database, created once through the harness, then used with a known password
        const probe = await startPooledStack(base, {
          postgres: pg,
          appPassword: password,
          tls: tls === "on" ? "rendered" : "off",
        });
        const direct = probe.direct;
        try {
          await checkTls(probe, tls);
        } finally {
          await probe.stop();
        }
        await initPgbench(direct, scale);
        const env: Env = { pg, fsync, tls, base, direct, password, warmupSeconds, log };
        if (sections.includes("matrix")) {
          for (const w of workloads) {
            for (const protocol of matrixProtocols) {
              const counts = [...new Set([...clients, ...directClients])].sort((x, y) => x - y);
              for (const n of counts) {
                const c = { section: "matrix" as const, workload: w, protocol, clients: n };
                if (directClients.includes(n)) results.push(await runOne(env, c, matrixDuration));
                if (clients.includes(n))
                  results.push(await runOne(env, { ...c, variant: prod }, matrixDuration));
              }
            }
          }
        }
        if (sections.includes("rounds")) {
          const order0: (Variant | undefined)[] = [undefined, ...variants];
          for (let round = 1; round <= rounds; round++) {
            for (const w of workloads) {
              for (const protocol of protocols) {
                // rotate the order every round so no variant always runs first or last
                const order = order0.map((_, i) => order0[(i + round - 1) % order0.length]);
                for (const v of order) {
                  const c = { section: "rounds" as const, round, variant: v, workload: w, protocol };
                  results.push(await runOne(env, { ...c, clients: roundClients }, duration));
                }
              }
            }
          }
        }
      } finally {
        await pg.stop();
      }
    }
    const meta = {
      date: new Date().toISOString(),
      "run time": `${((Date.now() - started) / 60_000).toFixed(1)} min`,
      machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}); client, pooler and server on the same cores`,
      PostgreSQL: `15, max_connections ${maxConnections}, ${fsyncs.map(fsyncName).join(" and ")}, on 127.0.0.1 (TCP, SCRAM)`,
      TLS: `--tls ${tlsText(tls, base)}`,
      PgBouncer: `${await localPgBouncerVersion()}, the ${stackName} stack's rendered ini (nothing dropped; addresses, ports, paths rewritten); rounds' variants: ${variants.map(variantLabel).join(", ")}`,
      pgbench: `scale ${scale}; -j = the client count with -M prepared, else min(clients, ${os.cpus().length}); warm-up ${warmupSeconds} s before each run; rounds ${rounds} x ${duration} s at ${roundClients} clients; matrix ${matrixDuration} s`,
      "pooler CPU":
        "utime + stime of the PgBouncer processes (/proc/<pid>/stat) over the measured run; 100 % = one core",
    };
    const text = markdown(results, meta, variantLabel(prod));
    if (md) fs.writeFileSync(md, text);
    if (json) fs.writeFileSync(json, JSON.stringify({ meta, results }, null, 2) + "\n");
    process.stdout.write(`\n${text}\n`);
    return 0;
  });
}
