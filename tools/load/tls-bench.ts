/**
 * npm run bench:tls -- --stack prod [--rounds 5 --duration 8] [--markdown FILE --json FILE]
 *
 * What TLS costs on each leg, on the local harness: a test PKI (tools/harness/tls.ts), PostgreSQL 15
 * serving TLS and accepting plaintext too (pg_hba `host` lines, which match both), and PgBouncer from the
 * stack's rendered ini with only addresses, ports, paths and each leg's TLS mode changed: the client leg
 * off (`client_tls_sslmode = disable`) or as the stack renders it, the server leg off (`disable`) or as
 * the stack renders it (prod: `require` and `verify-full`). Clients (pgbench, libpq) verify as the backend
 * does: `verify-full` against the CA that signed the pooler's (or PostgreSQL's) certificate.
 *
 * Three sections, each in rounds whose order of variants rotates, so every side of a comparison runs in
 * the same period:
 * - `throughput`: TPC-B and select-only at 50 clients through the pooler, client leg x server leg off/on;
 * - `connect`: `pgbench -C` (one connection per transaction), pooled and direct, TLS off and on;
 * - `rate`: `pgbench -R` at a fixed rate, per-transaction latency percentiles from `-l` logs, pooled and
 *   direct, TLS off and on.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import { buildCredentials } from "../../components/credentials";
import { renderIni } from "../../components/pgbouncer";
import type { StackSettings } from "../../stacks/settings";
import { loadStackSettings } from "../../stacks/settings";
import { Args, UsageError, runMain } from "../common";
import {
  type Conn,
  type PgBouncerHandle,
  type PostgresHandle,
  type TestCa,
  exitOnSignals,
  freePort,
  harnessIniInput,
  harnessVaultData,
  LOCAL_NAME,
  localPgBouncerVersion,
  localRewrites,
  postgresPasswordSql,
  psql,
  startPgBouncer,
  startTlsPostgres,
  withTlsLegs,
} from "../harness";
import { type CpuUse, measureCpu } from "./cpu";
import { type PgbenchResult, type Workload, initPgbench, parseTransactionLog, runPgbench } from "./pgbench";

// ---- variants -----------------------------------------------------------------------------------------

/** Where pgbench connects, and which legs speak TLS. */
export type Target =
  | { readonly kind: "pooled"; readonly client: boolean; readonly server: boolean }
  | { readonly kind: "direct"; readonly tls: boolean };

const onOff = (b: boolean) => (b ? "on" : "off");

export function targetLabel(t: Target): string {
  return t.kind === "direct"
    ? `direct, TLS ${onOff(t.tls)}`
    : `pooled, client ${onOff(t.client)} / server ${onOff(t.server)}`;
}

export const POOLED_VARIANTS: readonly Target[] = [
  { kind: "pooled", client: false, server: false },
  { kind: "pooled", client: true, server: false },
  { kind: "pooled", client: false, server: true },
  { kind: "pooled", client: true, server: true },
];
const DIRECT_OFF: Target = { kind: "direct", tls: false };
const DIRECT_ON: Target = { kind: "direct", tls: true };
/** The connect and rate sections: direct and pooled, TLS off everywhere and on everywhere (as prod). */
export const LATENCY_VARIANTS: readonly Target[] = [
  DIRECT_OFF,
  DIRECT_ON,
  { kind: "pooled", client: false, server: false },
  { kind: "pooled", client: true, server: true },
];

/** `list` rotated left by `round - 1` (round 1 keeps the order): no variant always runs first or last. */
export function rotate<T>(list: readonly T[], round: number): T[] {
  const n = list.length;
  return list.map((_, i) => list[(i + round - 1) % n]);
}

// ---- statistics ---------------------------------------------------------------------------------------

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Sample standard deviation (n - 1); 0 for one value. */
export function stddev(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
}

/**
 * The nearest-rank percentile (`p` in 0-100) of `xs`: the smallest value with at least p % of the values at
 * or below it. NaN for no values.
 */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  if (p < 0 || p > 100) throw new Error(`percentile: p must be 0-100, got ${p}`);
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

export interface RatioSummary {
  readonly ratios: readonly number[];
  readonly mean: number;
  readonly stddev: number;
  readonly min: number;
  readonly max: number;
}

/** Ratio `on / off` of each pair (pairs with a non-positive `off` left out), and their mean and spread. */
export function ratioSummary(pairs: readonly { on: number; off: number }[]): RatioSummary {
  const ratios = pairs.filter((p) => p.off > 0).map((p) => p.on / p.off);
  return {
    ratios,
    mean: mean(ratios),
    stddev: stddev(ratios),
    min: ratios.length ? Math.min(...ratios) : NaN,
    max: ratios.length ? Math.max(...ratios) : NaN,
  };
}

// ---- results ------------------------------------------------------------------------------------------

export type Section = "throughput" | "connect" | "rate";

export interface TlsBenchResult {
  readonly section: Section;
  readonly round: number;
  readonly target: Target;
  readonly label: string;
  readonly workload: Workload;
  readonly clients: number;
  readonly threads: number;
  readonly durationSeconds: number;
  readonly rate?: number;
  readonly tps: number;
  readonly latencyAvgMs: number;
  readonly averageConnectionMs?: number;
  /** Rate section: percentiles of the per-transaction latency, ms (from the scheduled start, as pgbench). */
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  /** The same without the schedule lag (from the transaction's actual start). */
  readonly p50NoLagMs?: number;
  readonly p99NoLagMs?: number;
  readonly loggedTransactions?: number;
  readonly exitCode: number;
  readonly ok: boolean;
  readonly firstError?: string;
  readonly cpu: CpuUse;
  readonly loadavg: readonly number[];
  readonly startedAt: string;
}

/** A comparison of one leg: the same round's `on` variant over its `off` variant. */
export interface Comparison {
  readonly name: string;
  readonly on: Target;
  readonly off: Target;
}

export const THROUGHPUT_COMPARISONS: readonly Comparison[] = [
  { name: "client leg, server leg off", on: POOLED_VARIANTS[1], off: POOLED_VARIANTS[0] },
  { name: "client leg, server leg on", on: POOLED_VARIANTS[3], off: POOLED_VARIANTS[2] },
  { name: "server leg, client leg off", on: POOLED_VARIANTS[2], off: POOLED_VARIANTS[0] },
  { name: "server leg, client leg on", on: POOLED_VARIANTS[3], off: POOLED_VARIANTS[1] },
  { name: "both legs", on: POOLED_VARIANTS[3], off: POOLED_VARIANTS[0] },
];

const same = (a: Target, b: Target) => targetLabel(a) === targetLabel(b);

/** Per workload and comparison: the pairs of the same round, `metric(on) / metric(off)`. */
export function compare(
  results: readonly TlsBenchResult[],
  section: Section,
  workload: Workload,
  c: Comparison,
  metric: (r: TlsBenchResult) => number = (r) => r.tps,
): RatioSummary {
  const mine = results.filter((r) => r.section === section && r.workload === workload);
  const pairs = mine
    .filter((r) => same(r.target, c.on))
    .flatMap((on) => {
      const off = mine.find((r) => r.round === on.round && same(r.target, c.off));
      return off ? [{ on: metric(on), off: metric(off) }] : [];
    });
  return ratioSummary(pairs);
}

// ---- markdown ------------------------------------------------------------------------------------------

const f0 = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n.toFixed(0) : "-");
const f2 = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n.toFixed(2) : "-");
const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(0)} %` : "-");
const load1 = (rs: readonly TlsBenchResult[]) =>
  rs.length
    ? `${f2(Math.min(...rs.map((r) => r.loadavg[0])))}-${f2(Math.max(...rs.map((r) => r.loadavg[0])))}`
    : "-";

function workloadsOf(results: readonly TlsBenchResult[], section: Section): Workload[] {
  return [...new Set(results.filter((r) => r.section === section).map((r) => r.workload))];
}

function targetsOf(results: readonly TlsBenchResult[], section: Section): Target[] {
  const seen = new Map<string, Target>();
  for (const r of results) if (r.section === section) seen.set(r.label, r.target);
  return [...seen.values()];
}

export function markdown(results: readonly TlsBenchResult[], meta: Record<string, string>): string {
  const out: string[] = ["| setting | value |", "|---|---|"];
  for (const [k, v] of Object.entries(meta)) out.push(`| ${k} | ${v} |`);
  out.push("");
  const tput = results.filter((r) => r.section === "throughput");
  if (tput.length) {
    out.push(
      "#### Throughput, 50 clients, pooled: tps per variant",
      "",
      "| workload | variant | tps mean (sd) | runs | latency ms | pooler CPU, % of a core | machine busy cores | load avg (1 min) | all ok |",
      "|---|---|---:|---:|---:|---:|---:|---|---|",
    );
    for (const w of workloadsOf(results, "throughput")) {
      for (const t of targetsOf(results, "throughput")) {
        const rs = tput.filter((r) => r.workload === w && same(r.target, t));
        const tps = rs.map((r) => r.tps);
        out.push(
          `| ${w} | ${targetLabel(t)} | ${f0(mean(tps))} (${f0(stddev(tps))}) | ${rs.length} | ` +
            `${f2(mean(rs.map((r) => r.latencyAvgMs)))} | ${pct(mean(rs.map((r) => r.cpu.processCores)))} | ` +
            `${f2(mean(rs.map((r) => r.cpu.machineBusyCores)))} | ${load1(rs)} | ${rs.every((r) => r.ok) ? "yes" : "NO"} |`,
        );
      }
    }
    out.push(
      "",
      "#### Throughput: ratio TLS on / off of each leg, same round",
      "",
      "| workload | leg | ratio mean | sd | min | max | pairs | per round |",
      "|---|---|---:|---:|---:|---:|---:|---|",
    );
    for (const w of workloadsOf(results, "throughput")) {
      for (const c of THROUGHPUT_COMPARISONS) {
        const s = compare(results, "throughput", w, c);
        out.push(
          `| ${w} | ${c.name} | ${f2(s.mean)} | ${f2(s.stddev)} | ${f2(s.min)} | ${f2(s.max)} | ` +
            `${s.ratios.length} | ${s.ratios.map(f2).join(" ")} |`,
        );
      }
    }
    out.push(
      "",
      "Every run (tps @ 1-minute load average at its start):",
      "",
      `| workload | round | ${POOLED_VARIANTS.map(targetLabel).join(" | ")} |`,
      `|---|---:|${POOLED_VARIANTS.map(() => "---:").join("|")}|`,
    );
    const rounds = [...new Set(tput.map((r) => r.round))].sort((a, b) => a - b);
    for (const w of workloadsOf(results, "throughput")) {
      for (const round of rounds) {
        const cells = POOLED_VARIANTS.map((t) => {
          const r = tput.find((x) => x.workload === w && x.round === round && same(x.target, t));
          return r ? `${f0(r.tps)} @${r.loadavg[0].toFixed(1)}` : "-";
        });
        out.push(`| ${w} | ${round} | ${cells.join(" | ")} |`);
      }
    }
    out.push("");
  }
  const conn = results.filter((r) => r.section === "connect");
  if (conn.length) {
    out.push(
      "#### Connect latency: `pgbench -C` (a new connection, login and one transaction each time)",
      "",
      "| workload | target | connections/s mean (sd) | connect ms mean (sd) | transaction ms mean (without the connect) | runs | load avg (1 min) | all ok |",
      "|---|---|---:|---:|---:|---:|---|---|",
    );
    for (const w of workloadsOf(results, "connect")) {
      for (const t of targetsOf(results, "connect")) {
        const rs = conn.filter((r) => r.workload === w && same(r.target, t));
        const cms = rs.map((r) => r.averageConnectionMs ?? NaN);
        out.push(
          `| ${w} | ${targetLabel(t)} | ${f0(mean(rs.map((r) => r.tps)))} (${f0(stddev(rs.map((r) => r.tps)))}) | ` +
            `${f2(mean(cms))} (${f2(stddev(cms))}) | ${f2(mean(rs.map((r) => r.latencyAvgMs)))} | ${rs.length} | ` +
            `${load1(rs)} | ${rs.every((r) => r.ok) ? "yes" : "NO"} |`,
        );
      }
    }
    out.push("");
  }
  const rate = results.filter((r) => r.section === "rate");
  if (rate.length) {
    out.push(
      "#### Latency per transaction at a fixed rate (`pgbench -R`, percentiles from the `-l` log)",
      "",
      "| workload | target | p50 ms (per round) | p99 ms (per round) | p50 / p99 ms without schedule lag | mean ms | transactions | load avg (1 min) | all ok |",
      "|---|---|---|---|---|---:|---:|---|---|",
    );
    for (const w of workloadsOf(results, "rate")) {
      for (const t of targetsOf(results, "rate")) {
        const rs = rate.filter((r) => r.workload === w && same(r.target, t));
        out.push(
          `| ${w} | ${targetLabel(t)} | ${f2(mean(rs.map((r) => r.p50Ms ?? NaN)))} (${rs.map((r) => f2(r.p50Ms)).join(" ")}) | ` +
            `${f2(mean(rs.map((r) => r.p99Ms ?? NaN)))} (${rs.map((r) => f2(r.p99Ms)).join(" ")}) | ` +
            `${f2(mean(rs.map((r) => r.p50NoLagMs ?? NaN)))} / ${f2(mean(rs.map((r) => r.p99NoLagMs ?? NaN)))} | ` +
            `${f2(mean(rs.map((r) => r.latencyAvgMs)))} | ${rs.reduce((a, r) => a + (r.loggedTransactions ?? 0), 0)} | ` +
            `${load1(rs)} | ${rs.every((r) => r.ok) ? "yes" : "NO"} |`,
        );
      }
    }
    out.push("", "Added latency, the same round's difference (ms, mean of the rounds):", "");
    out.push(
      "| workload | comparison | p50 added (per round) | p99 added (per round) |",
      "|---|---|---|---|",
    );
    const diffs: Comparison[] = [
      { name: "pooled, TLS on both legs - direct, TLS on", on: LATENCY_VARIANTS[3], off: DIRECT_ON },
      { name: "pooled, TLS off - direct, TLS off", on: LATENCY_VARIANTS[2], off: DIRECT_OFF },
      { name: "direct, TLS on - direct, TLS off", on: DIRECT_ON, off: DIRECT_OFF },
      { name: "pooled, TLS on both - pooled, TLS off", on: LATENCY_VARIANTS[3], off: LATENCY_VARIANTS[2] },
    ];
    for (const w of workloadsOf(results, "rate")) {
      for (const c of diffs) {
        const d = (m: (r: TlsBenchResult) => number | undefined) =>
          addedPerRound(results, w, c, (r) => m(r) ?? NaN);
        const p50 = d((r) => r.p50Ms);
        const p99 = d((r) => r.p99Ms);
        out.push(
          `| ${w} | ${c.name} | ${f2(mean(p50))} (${p50.map(f2).join(" ")}) | ${f2(mean(p99))} (${p99.map(f2).join(" ")}) |`,
        );
      }
    }
    out.push("");
  }
  return out.join("\n");
}

/** Rate section: `metric(on) - metric(off)` per round. */
export function addedPerRound(
  results: readonly TlsBenchResult[],
  workload: Workload,
  c: Comparison,
  metric: (r: TlsBenchResult) => number,
): number[] {
  const mine = results.filter((r) => r.section === "rate" && r.workload === workload);
  return mine
    .filter((r) => same(r.target, c.on))
    .flatMap((on) => {
      const off = mine.find((r) => r.round === on.round && same(r.target, c.off));
      return off ? [metric(on) - metric(off)] : [];
    });
}

// ---- the local world: PKI, PostgreSQL with TLS and plaintext, PgBouncer per variant ------------------

interface World {
  readonly dir: string;
  readonly settings: StackSettings;
  readonly pg: PostgresHandle;
  readonly postgresCa: TestCa;
  readonly poolerCa: TestCa;
  readonly poolerCert: { certFile: string; keyFile: string };
  readonly user: string;
  readonly password: string;
  readonly statsPassword: string;
}

async function startWorld(
  settings: StackSettings,
  o: { fsync: boolean; maxConnections: number; scale: number },
): Promise<World & { stop(): Promise<void> }> {
  // pg_hba stays as initdb wrote it (hostsslOnly off): `host` lines, which match TLS and plaintext alike
  return startTlsPostgres(
    "bench-tls",
    { maxConnections: o.maxConnections, fsync: o.fsync },
    async ({ dir, pg, postgresCa, poolerCa, poolerCert }) => {
      const user = "clipper_app";
      const password = "bench-" + crypto.randomBytes(8).toString("hex");
      const statsPassword = crypto.randomBytes(12).toString("hex");
      const creds = credentialsFor(settings, user, password, statsPassword, 0);
      await pg.psql(
        `CREATE ROLE ${user} LOGIN ${postgresPasswordSql(settings, creds.authFile, user, password)}`,
      );
      await pg.psql(`CREATE DATABASE ${settings.database.name} OWNER ${user}`);
      const world = { dir, settings, pg, postgresCa, poolerCa, poolerCert, user, password, statsPassword };
      // both ways in work, and each is what it says: plaintext is plaintext, TLS is TLS
      for (const tls of [false, true]) {
        const c = directConn(world, tls);
        const ssl = await psql(c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
        if (ssl !== (tls ? "t" : "f")) throw new Error(`bench:tls: direct TLS ${onOff(tls)} got ssl=${ssl}`);
      }
      await initPgbench(directConn(world, false), o.scale);
      return { settings, user, password, statsPassword };
    },
  );
}

function credentialsFor(s: StackSettings, user: string, password: string, stats: string, port: number) {
  return buildCredentials(
    s.credentials,
    { statsUser: s.exporter.statsUser, pgbouncerPort: port },
    { data: harnessVaultData(s, { user, password, statsPassword: stats }) },
  );
}

function directConn(w: World, tls: boolean): Conn {
  return {
    host: w.pg.host,
    port: w.pg.port,
    user: w.user,
    database: w.settings.database.name,
    password: w.password,
    // off is explicit: the harness's clients default to libpq's `prefer`
    tls: tls
      ? { sslmode: "verify-full", rootCertFile: w.postgresCa.certFile, hostname: LOCAL_NAME }
      : { sslmode: "disable" },
  };
}

/**
 * The stack's rendered ini for one process (`input`: the harness's rewrites, TLS files included), with each
 * leg either as the stack renders it (`on`) or `disable` (`off`). Nothing else changes.
 */
export function variantIni(
  input: ReturnType<typeof harnessIniInput>,
  legs: { client: boolean; server: boolean },
): string {
  const tls = input.tls;
  if (legs.client && tls.client.sslmode === "disable") {
    throw new Error("bench:tls: the stack serves no client TLS; nothing to compare");
  }
  if (legs.server && tls.server.sslmode === "disable") {
    throw new Error("bench:tls: the stack has no server TLS; nothing to compare");
  }
  return renderIni(withTlsLegs(input, legs));
}

async function startPooler(
  w: World,
  legs: { client: boolean; server: boolean },
): Promise<{ bouncer: PgBouncerHandle; conn: Conn }> {
  const s = w.settings;
  const port = await freePort();
  const creds = credentialsFor(s, w.user, w.password, w.statsPassword, port);
  const bouncer = await startPgBouncer({
    authFile: creds.authFile,
    processes: s.workload.processesPerPod,
    port,
    ini: (f) => {
      const files = {
        certFile: w.poolerCert.certFile,
        keyFile: w.poolerCert.keyFile,
        serverCaFile: w.postgresCa.certFile,
      };
      return variantIni(harnessIniInput(s, creds.iniAuth, localRewrites(f, w.pg, files)), legs);
    },
  });
  const conn: Conn = {
    host: bouncer.host,
    port: bouncer.port,
    user: w.user,
    database: s.database.name,
    password: w.password,
    tls: legs.client
      ? { sslmode: "verify-full", rootCertFile: w.poolerCa.certFile, hostname: LOCAL_NAME }
      : { sslmode: "disable" },
  };
  try {
    // the server leg is what it says: PostgreSQL sees TLS on the pooler's connection, or not
    const ssl = await psql(conn, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    if (ssl !== (legs.server ? "t" : "f")) {
      throw new Error(`bench:tls: server leg ${onOff(legs.server)}, but PostgreSQL reports ssl=${ssl}`);
    }
  } catch (e) {
    await bouncer.stop();
    throw e;
  }
  return { bouncer, conn };
}

// ---- one run -------------------------------------------------------------------------------------------

interface RunSpec {
  readonly section: Section;
  readonly round: number;
  readonly target: Target;
  readonly workload: Workload;
  readonly clients: number;
  readonly threads: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly rate?: number;
}

async function runOne(w: World & { log: (l: string) => void }, spec: RunSpec): Promise<TlsBenchResult> {
  let pooler: { bouncer: PgBouncerHandle; conn: Conn } | undefined;
  try {
    const t = spec.target;
    let conn: Conn;
    if (t.kind === "pooled") {
      pooler = await startPooler(w, t);
      conn = pooler.conn;
    } else {
      conn = directConn(w, t.tls);
    }
    const base = {
      conn,
      clients: spec.clients,
      threads: spec.threads,
      workload: spec.workload,
      ...(spec.rate ? { rate: spec.rate } : {}),
      connectPerTransaction: spec.section === "connect",
    };
    if (spec.warmupSeconds > 0) await runPgbench({ ...base, durationSeconds: spec.warmupSeconds });
    const loadavg = os.loadavg();
    const startedAt = new Date().toISOString();
    const meter = measureCpu(pooler ? pooler.bouncer.pids() : []);
    const r: PgbenchResult = await runPgbench({
      ...base,
      durationSeconds: spec.durationSeconds,
      transactionLog: spec.section === "rate",
    });
    const cpu = meter.stop();
    let pcts = {};
    if (spec.section === "rate") {
      const tx = parseTransactionLog(r.transactionLog ?? [], true);
      const lat = tx.flatMap((x) => (x.latencyUs !== undefined ? [x.latencyUs / 1000] : []));
      const noLag = tx.flatMap((x) =>
        x.latencyUs !== undefined ? [(x.latencyUs - (x.lagUs ?? 0)) / 1000] : [],
      );
      pcts = {
        p50Ms: percentile(lat, 50),
        p99Ms: percentile(lat, 99),
        p50NoLagMs: percentile(noLag, 50),
        p99NoLagMs: percentile(noLag, 99),
        loggedTransactions: lat.length,
      };
    }
    const result: TlsBenchResult = {
      section: spec.section,
      round: spec.round,
      target: t,
      label: targetLabel(t),
      workload: spec.workload,
      clients: spec.clients,
      threads: spec.threads,
      durationSeconds: spec.durationSeconds,
      ...(spec.rate ? { rate: spec.rate } : {}),
      tps: r.tps,
      latencyAvgMs: r.latencyAvgMs,
      ...(r.averageConnectionMs !== undefined ? { averageConnectionMs: r.averageConnectionMs } : {}),
      ...pcts,
      exitCode: r.exitCode,
      ok: r.ok,
      ...(r.errors.length ? { firstError: r.errors[0] } : {}),
      cpu,
      loadavg,
      startedAt,
    };
    w.log(
      `${spec.section.padEnd(10)} round ${spec.round} ${spec.workload.padEnd(11)} ${result.label.padEnd(34)} ` +
        `${f0(r.tps).padStart(6)} tps, ${f2(r.latencyAvgMs)} ms` +
        (result.averageConnectionMs !== undefined ? `, connect ${f2(result.averageConnectionMs)} ms` : "") +
        (result.p50Ms !== undefined ? `, p50 ${f2(result.p50Ms)} p99 ${f2(result.p99Ms)} ms` : "") +
        `, pooler ${pct(cpu.processCores)}, load ${loadavg.map((x) => x.toFixed(2)).join(" ")}` +
        (r.ok ? "" : `  [${r.errors[0] ?? `exit ${r.exitCode}`}]`),
    );
    return result;
  } finally {
    await pooler?.bouncer.stop();
  }
}

// ---- main ----------------------------------------------------------------------------------------------

const USAGE = `npm run bench:tls -- --stack NAME [options]

The cost of TLS on each leg, on the local harness (PostgreSQL 15, the stack's PgBouncer from its rendered
ini; only addresses, ports, paths and each leg's TLS mode changed).

  --stack NAME            the stack whose ini and TLS modes are measured (prod)
  --sections LIST         throughput,connect,rate (default all three)
  --rounds N              rounds of the throughput section (default 5)
  --duration S            seconds per throughput run (default 8)
  --clients N             clients of the throughput runs (default 50)
  --workloads LIST        throughput workloads (default tpcb,select-only)
  --connect-rounds N      rounds of the connect section (default 3)
  --connect-duration S    seconds per connect run (default 5)
  --connect-clients N     clients of the connect runs, each connecting per transaction (default 1)
  --rate N                transactions/s of the rate runs (default 200)
  --rate-clients N        clients of the rate runs (default 10)
  --rate-rounds N         rounds of the rate section (default 3)
  --rate-duration S       seconds per rate run (default 15)
  --rate-workloads LIST   (default select-only,tpcb)
  --warmup S              warm-up before each run, same target (default 2)
  --fsync on|off          PostgreSQL's fsync (default on: durable, as production runs)
  --scale N               pgbench scale (default 10)
  --markdown FILE         write the tables as Markdown
  --json FILE             write every run as JSON`;

function workloadList(a: Args, name: string, def: string): Workload[] {
  const list = a.string(name, def).split(",") as Workload[];
  for (const w of list) {
    if (w !== "tpcb" && w !== "select-only")
      throw new UsageError(`--${name}: "${w}" is not tpcb or select-only`);
  }
  return list;
}

if (require.main === module) {
  runMain(USAGE, async () => {
    const a = new Args(process.argv.slice(2));
    const stackName = a.string("stack");
    const sections = a.string("sections", "throughput,connect,rate").split(",") as Section[];
    for (const s of sections) {
      if (!["throughput", "connect", "rate"].includes(s)) throw new UsageError(`--sections: unknown "${s}"`);
    }
    const rounds = a.int("rounds", 5, 1, 100);
    const duration = a.int("duration", 8, 1, 3600);
    const clients = a.int("clients", 50, 1, 1000);
    const workloads = workloadList(a, "workloads", "tpcb,select-only");
    const connectRounds = a.int("connect-rounds", 3, 1, 100);
    const connectDuration = a.int("connect-duration", 5, 1, 3600);
    const connectClients = a.int("connect-clients", 1, 1, 100);
    const rate = a.int("rate", 200, 1, 100000);
    const rateClients = a.int("rate-clients", 10, 1, 1000);
    const rateRounds = a.int("rate-rounds", 3, 1, 100);
    const rateDuration = a.int("rate-duration", 15, 1, 3600);
    const rateWorkloads = workloadList(a, "rate-workloads", "select-only,tpcb");
    const warmupSeconds = a.int("warmup", 2, 0, 600);
    const fsyncText = a.string("fsync", "on");
    if (fsyncText !== "on" && fsyncText !== "off") throw new UsageError(`--fsync: "${fsyncText}"`);
    const scale = a.int("scale", 10, 1, 1000);
    const md = a.optional("markdown");
    const json = a.optional("json");
    a.done();
    const settings = loadStackSettings(stackName);
    exitOnSignals();
    const log = (l: string) => process.stdout.write(`${l}\n`);
    const started = Date.now();
    const loadAtStart = os.loadavg();
    const maxConnections = 100;
    const world = await startWorld(settings, { fsync: fsyncText === "on", maxConnections, scale });
    const results: TlsBenchResult[] = [];
    const w = { ...world, log };
    const cores = os.cpus().length;
    try {
      if (sections.includes("throughput")) {
        for (let round = 1; round <= rounds; round++) {
          for (const workload of workloads) {
            for (const target of rotate(POOLED_VARIANTS, round)) {
              const threads = Math.min(clients, cores);
              const spec = { section: "throughput" as const, round, target, workload, clients, threads };
              results.push(await runOne(w, { ...spec, durationSeconds: duration, warmupSeconds }));
            }
          }
        }
      }
      if (sections.includes("connect")) {
        for (let round = 1; round <= connectRounds; round++) {
          for (const target of rotate(LATENCY_VARIANTS, round)) {
            const spec = {
              section: "connect" as const,
              round,
              target,
              workload: "select-only" as const,
              clients: connectClients,
              threads: Math.min(connectClients, cores),
            };
            results.push(
              await runOne(w, {
                ...spec,
                durationSeconds: connectDuration,
                warmupSeconds: Math.min(1, warmupSeconds),
              }),
            );
          }
        }
      }
      if (sections.includes("rate")) {
        for (let round = 1; round <= rateRounds; round++) {
          for (const workload of rateWorkloads) {
            for (const target of rotate(LATENCY_VARIANTS, round)) {
              const spec = {
                section: "rate" as const,
                round,
                target,
                workload,
                clients: rateClients,
                threads: Math.min(rateClients, cores),
                rate,
              };
              results.push(await runOne(w, { ...spec, durationSeconds: rateDuration, warmupSeconds }));
            }
          }
        }
      }
    } finally {
      await world.stop();
    }
    const tls = settings.tls;
    const meta = {
      date: new Date().toISOString(),
      "run time": `${((Date.now() - started) / 60_000).toFixed(1)} min`,
      "load avg at start": loadAtStart.map((x) => x.toFixed(2)).join(" "),
      "load avg at end": os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(" "),
      machine: `${cores} CPUs (${os.cpus()[0]?.model ?? "?"}); pgbench, pooler and server on the same cores`,
      PostgreSQL: `15, max_connections ${maxConnections}, fsync ${fsyncText}, on 127.0.0.1 (TCP, SCRAM), ssl=on with pg_hba host lines (TLS and plaintext both accepted)`,
      PgBouncer: `${await localPgBouncerVersion()}, the ${stackName} stack's rendered ini (addresses, ports, paths rewritten); leg on = as rendered (client_tls_sslmode ${tls.clientSslMode}, server_tls_sslmode ${tls.serverSslMode}, protocols ${tls.protocols}), leg off = disable`,
      certificates:
        "test CAs made by openssl (tools/harness/tls.ts), EC P-256 keys; clients verify-full (libpq PGSSLMODE, PGSSLROOTCERT)",
      pgbench:
        `scale ${scale}, -M simple; throughput ${rounds} rounds x ${duration} s at ${clients} clients; connect -C ` +
        `${connectRounds} x ${connectDuration} s at ${connectClients} client(s); rate -R ${rate} at ${rateClients} ` +
        `clients, ${rateRounds} x ${rateDuration} s; warm-up ${warmupSeconds} s before each run; variants in ` +
        "an order rotated every round",
    };
    const text = markdown(results, meta);
    if (md) fs.writeFileSync(md, text);
    if (json) fs.writeFileSync(json, JSON.stringify({ meta, results }, null, 2) + "\n");
    process.stdout.write(`\n${text}\n`);
    return 0;
  });
}
