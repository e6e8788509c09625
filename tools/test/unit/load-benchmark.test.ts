import * as assert from "node:assert/strict";
import {
  type BenchResult,
  markdown,
  parseVariant,
  roundRatios,
  targets,
  threadsFor,
  tlsText,
  variantSettings,
} from "../../load/benchmark";
import { loadStackSettings } from "../../../stacks/settings";

const prod = loadStackSettings("prod");

function run(over: Partial<BenchResult>): BenchResult {
  return {
    section: "rounds",
    fsync: true,
    round: 1,
    label: "direct",
    workload: "tpcb",
    protocol: "simple",
    clients: 50,
    threads: 2,
    durationSeconds: 15,
    tps: 1000,
    latencyAvgMs: 50,
    transactions: 15000,
    failed: 0,
    abortedClients: 0,
    connectionErrors: 0,
    exitCode: 0,
    ok: true,
    backendsMax: 50,
    backendsActiveMax: 50,
    cpu: { processCores: 0, maxProcessCores: 0, machineBusyCores: 2 },
    loadavg: [1, 1, 1],
    startedAt: "2026-12-01T00:00:00Z",
    ...over,
  };
}

const pooled = (over: Partial<BenchResult>) =>
  run({
    label: "pooled 50",
    variant: { cap: 50, processes: 1 },
    serverCap: 50,
    cpu: { processCores: 0.9, maxProcessCores: 0.9, machineBusyCores: 2 },
    ...over,
  });

describe("benchmark (tools/load/benchmark)", () => {
  it("parses variants: prod is the stack's own pool, C one process, NxC several; rejects the rest", () => {
    assert.deepEqual(parseVariant("prod", prod), {
      cap: prod.pool.maxDbConnections,
      processes: prod.workload.processesPerPod,
    });
    assert.deepEqual(parseVariant("10", prod), { cap: 10, processes: 1 });
    assert.deepEqual(parseVariant("2x5", prod), { cap: 5, processes: 2 });
    for (const bad of ["0", "2x0", "0x5", "x5", "two"])
      assert.throws(() => parseVariant(bad, prod), /--variants/);
  });

  it("renders a variant through the product's settings: processesPerPod and the per-process cap", () => {
    const s = variantSettings(prod, { cap: 5, processes: 2 });
    assert.equal(s.workload.processesPerPod, 2);
    assert.equal(s.pool.maxDbConnections, 5);
    assert.equal(s.pool.defaultPoolSize, 5);
    assert.equal(s.pool.maxPreparedStatements, prod.pool.maxPreparedStatements);
  });

  it("runs -M prepared with one pgbench thread per client", () => {
    assert.equal(threadsFor("prepared", 50), 50);
    assert.ok(threadsFor("simple", 50) < 50);
  });

  it("pairs every variant run with the direct run of the same round, fsync setting and protocol", () => {
    const results = [
      run({ round: 1, tps: 1000 }),
      pooled({ round: 1, tps: 1100 }),
      run({ round: 2, tps: 800 }),
      pooled({ round: 2, tps: 720 }),
      // another protocol and fsync setting must not be paired with these
      run({ round: 1, protocol: "prepared", tps: 5000 }),
      run({ round: 1, fsync: false, tps: 9000 }),
    ];
    const [s] = roundRatios(results);
    assert.equal(roundRatios(results).length, 1);
    assert.deepEqual(
      s.ratios.map((r) => r.toFixed(2)),
      ["1.10", "0.90"],
    );
    assert.equal(s.mean.toFixed(2), "1.00");
    assert.equal(s.directTpsMean, 900);
    assert.equal(s.poolerCores, 0.9);
  });

  it("judges the targets from one run, and says NO where one is missed", () => {
    const results = [
      run({ round: 1, tps: 1000 }),
      pooled({ round: 1, tps: 950 }),
      run({ round: 1, fsync: false, workload: "select-only", tps: 10000 }),
      pooled({ round: 1, fsync: false, workload: "select-only", tps: 9500 }),
      pooled({ section: "matrix", round: undefined, clients: 500, backendsMax: 50 }),
      pooled({ section: "matrix", round: undefined, clients: 500, fsync: false, backendsMax: 51 }),
    ];
    const t = targets(results, "pooled 50");
    const byName = (s: string) => t.find((x) => x.target.startsWith(s) && x.target.includes("-M simple"));
    assert.equal(byName("pooled 50 >= 1.0x")?.met, false);
    assert.equal(byName("best variant >= 0.9x")?.met, true);
    assert.equal(
      t.find((x) => x.target.includes("-M prepared") && x.target.startsWith("pooled"))?.met,
      undefined,
    );
    const big = t.filter((x) => x.target.startsWith("500 clients"));
    assert.deepEqual(
      big.map((x) => x.met),
      [true, false],
    );
    assert.match(markdown(results, { k: "v" }, "pooled 50"), /\| NO \|/);
  });

  it("names what --tls on and --tls off run: the stack's legs, or plaintext throughout", () => {
    assert.equal(
      tlsText("on", prod),
      "on: PgBouncer's client leg require and server leg verify-full as the stack renders them, " +
        "PostgreSQL ssl=on, pgbench sslmode=prefer (direct runs over TLS too)",
    );
    assert.match(
      tlsText("off", prod),
      /^off: PgBouncer's client and server legs disable, PostgreSQL without ssl/,
    );
  });
});
