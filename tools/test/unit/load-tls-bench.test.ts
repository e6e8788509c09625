import * as assert from "node:assert/strict";
import {
  LATENCY_VARIANTS,
  POOLED_VARIANTS,
  THROUGHPUT_COMPARISONS,
  type TlsBenchResult,
  addedPerRound,
  compare,
  markdown,
  percentile,
  ratioSummary,
  rotate,
  targetLabel,
  variantIni,
} from "../../load/tls-bench";
import { parsePgbench, parseTransactionLog } from "../../load/pgbench";
import { harnessIni, harnessIniInput, localRewrites } from "../../harness";
import { loadStackSettings } from "../../../stacks/settings";

const prod = loadStackSettings("prod");

function result(over: Partial<TlsBenchResult>): TlsBenchResult {
  const target = over.target ?? POOLED_VARIANTS[0];
  return {
    section: "throughput",
    round: 1,
    target,
    label: targetLabel(target),
    workload: "tpcb",
    clients: 50,
    threads: 2,
    durationSeconds: 8,
    tps: 1000,
    latencyAvgMs: 50,
    exitCode: 0,
    ok: true,
    cpu: { processCores: 0.2, maxProcessCores: 0.2, machineBusyCores: 2 },
    loadavg: [3, 2, 1],
    startedAt: "2026-12-02T00:00:00Z",
    ...over,
    ...(over.target ? { label: targetLabel(over.target) } : {}),
  };
}

describe("TLS benchmark (tools/load/tls-bench)", () => {
  it("takes the nearest-rank percentile, whatever the order of the values", () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    assert.equal(percentile(xs, 50), 5);
    assert.equal(percentile(xs, 90), 9);
    assert.equal(percentile(xs, 99), 10);
    assert.equal(percentile(xs, 100), 10);
    assert.equal(percentile(xs, 0), 1);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.throws(() => percentile(xs, 101), /0-100/);
    // 1000 values 1..1000: p99 is the 990th
    const thousand = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    assert.equal(percentile(thousand, 99), 990);
  });

  it("summarises on/off ratios: mean, sample sd, min, max; pairs with no off run left out", () => {
    const s = ratioSummary([
      { on: 90, off: 100 },
      { on: 110, off: 100 },
      { on: 5, off: 0 },
    ]);
    assert.deepEqual(s.ratios, [0.9, 1.1]);
    assert.ok(Math.abs(s.mean - 1.0) < 1e-12);
    assert.ok(Math.abs(s.stddev - Math.sqrt(0.02)) < 1e-12);
    assert.equal(s.min, 0.9);
    assert.equal(s.max, 1.1);
    assert.equal(ratioSummary([{ on: 1, off: 2 }]).stddev, 0);
  });

  it("rotates the variants every round, so each runs once in every position", () => {
    assert.deepEqual(rotate([1, 2, 3, 4], 1), [1, 2, 3, 4]);
    assert.deepEqual(rotate([1, 2, 3, 4], 2), [2, 3, 4, 1]);
    assert.deepEqual(rotate([1, 2, 3, 4], 5), [1, 2, 3, 4]);
  });

  it("pairs each leg's on run with its off run of the same round and workload", () => {
    const [offOff, onOff, offOn, onOn] = POOLED_VARIANTS;
    const results = [
      result({ round: 1, target: offOff, tps: 1000 }),
      result({ round: 1, target: onOff, tps: 900 }),
      result({ round: 1, target: offOn, tps: 800 }),
      result({ round: 1, target: onOn, tps: 700 }),
      result({ round: 2, target: offOff, tps: 2000 }),
      result({ round: 2, target: onOff, tps: 1600 }),
      // another workload and another section never pair
      result({ round: 2, target: offOff, tps: 1, workload: "select-only" }),
      result({ round: 2, target: offOff, tps: 1, section: "connect" }),
    ];
    const client = compare(results, "throughput", "tpcb", THROUGHPUT_COMPARISONS[0]);
    assert.deepEqual(client.ratios, [0.9, 0.8]);
    const serverWithClientOn = compare(results, "throughput", "tpcb", THROUGHPUT_COMPARISONS[3]);
    assert.deepEqual(
      serverWithClientOn.ratios.map((r) => r.toFixed(4)),
      [(700 / 900).toFixed(4)],
    );
    const both = compare(results, "throughput", "tpcb", THROUGHPUT_COMPARISONS[4]);
    assert.deepEqual(both.ratios, [0.7]);
  });

  it("gives the added latency per round as on - off of the same round", () => {
    const [directOff, directOn, , pooledOn] = LATENCY_VARIANTS;
    const results = [
      result({ section: "rate", round: 1, target: directOn, p99Ms: 2.0 }),
      result({ section: "rate", round: 1, target: pooledOn, p99Ms: 3.5 }),
      result({ section: "rate", round: 2, target: directOn, p99Ms: 1.0 }),
      result({ section: "rate", round: 2, target: pooledOn, p99Ms: 1.5 }),
      result({ section: "rate", round: 2, target: directOff, p99Ms: 0.5 }),
    ];
    assert.deepEqual(
      addedPerRound(results, "tpcb", { name: "x", on: pooledOn, off: directOn }, (r) => r.p99Ms ?? NaN),
      [1.5, 0.5],
    );
    const text = markdown(results, { date: "d" });
    assert.match(text, /Latency per transaction at a fixed rate/);
    assert.match(
      text,
      /\| tpcb \| pooled, TLS on both legs - direct, TLS on \| - \(- -\) \| 1\.00 \(1\.50 0\.50\) \|/,
    );
  });

  it("reads pgbench's per-transaction log, with the schedule lag under -R, skipping failed ones", () => {
    const lines = [
      "0 199 2241 0 1175850568 995598 1204",
      "3 12 failed 0 1175850569 10 3",
      "1 5 870 0 1175850570 500000",
      "not a log line",
    ];
    const tx = parseTransactionLog(lines, true);
    assert.equal(tx.length, 3);
    assert.deepEqual(tx[0], { client: 0, latencyUs: 2241, lagUs: 1204, endSeconds: 1175850568.995598 });
    assert.equal(tx[1].latencyUs, undefined);
    assert.deepEqual(tx[2], { client: 1, latencyUs: 870, endSeconds: 1175850570.5 });
    // without -R the 7th field is not a lag
    assert.equal(parseTransactionLog([lines[0]], false)[0].lagUs, undefined);
  });

  it("reads pgbench -C's average connection time", () => {
    const r = parsePgbench(
      0,
      "number of transactions actually processed: 100\nlatency average = 2.070 ms\n" +
        "average connection time = 32.700 ms\ntps = 29.1 (including reconnection times)\n",
      "",
    );
    assert.equal(r.averageConnectionMs, 32.7);
    assert.equal(r.tps, 29.1);
  });

  it("changes only each leg's mode in the stack's rendered ini (TLS files rewritten by the harness)", () => {
    const files = {
      port: 6432,
      authFile: "/tmp/a/userlist.txt",
      unixSocketDir: "/tmp/a",
      pidfile: "/tmp/a/p.pid",
      logfile: "/tmp/a/p.log",
    };
    const auth = { type: prod.credentials.authType };
    const tlsFiles = {
      certFile: "/pki/pooler.crt",
      keyFile: "/pki/pooler.key",
      serverCaFile: "/pki/pg-ca.crt",
    };
    const rewrites = localRewrites(files, { host: "127.0.0.1", port: 5432 }, tlsFiles);
    const input = harnessIniInput(prod, auth, rewrites);
    const rendered = harnessIni(prod, auth, rewrites);
    const both = variantIni(input, { client: true, server: true });
    assert.equal(both, rendered);
    assert.match(both, /^client_tls_cert_file = \/pki\/pooler\.crt$/m);
    assert.match(both, /^server_tls_ca_file = \/pki\/pg-ca\.crt$/m);
    assert.match(both, /^client_tls_sslmode = require$/m);
    assert.match(both, /^server_tls_sslmode = verify-full$/m);
    const none = variantIni(input, { client: false, server: false });
    assert.match(none, /^client_tls_sslmode = disable$/m);
    assert.match(none, /^server_tls_sslmode = disable$/m);
    assert.doesNotMatch(none, /client_tls_cert_file|server_tls_ca_file/);
    // every non-TLS line is the rendered one
    const nonTls = (t: string) =>
      t
        .split("\n")
        .filter((l) => !/^(client|server)_tls_/.test(l))
        .join("\n");
    assert.equal(nonTls(none), nonTls(rendered));
  });
});
