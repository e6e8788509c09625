import * as assert from "node:assert/strict";
import { UnsupportedParameterError, renderIni } from "../components/pgbouncer/ini";
import { podIniInput, podIniInputs } from "../components/pgbouncer/pod-ini";
import { supportsParameter } from "../components/pgbouncer/versions";
import { parseSettings, type StackSettings } from "../stacks/settings";
import {
  type HarnessRewrites,
  harnessIni,
  harnessIniInput,
  iniValue,
  localPgBouncerVersion,
} from "../tools/harness";
import { requireBinary } from "../tools/harness/proc";
import { loadStackSettings } from "../tools/load/stack-settings";

/** Lines only in `a` and lines only in `b`, by a longest-common-subsequence line diff. */
function lineDiff(a: string[], b: string[]): { removed: string[]; added: string[] } {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const removed: string[] = [];
  const added: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) removed.push(a[i++]);
    else added.push(b[j++]);
  }
  removed.push(...a.slice(i));
  added.push(...b.slice(j));
  return { removed, added };
}

const keyOf = (line: string) => /^([a-z_]+) =/.exec(line)?.[1] ?? line;

/** Parameters the harness may rewrite; the database line may differ in host and port only. */
const REWRITTEN = ["listen_addr", "listen_port", "unix_socket_dir", "pidfile", "logfile", "auth_file"];

function rewrites(version: string, log: string[]): HarnessRewrites {
  return {
    version,
    listen: { addr: "127.0.0.1", port: 40001 },
    database: { host: "127.0.0.1", port: 40002 },
    paths: {
      authFile: "/tmp/h/userlist.txt",
      unixSocketDir: "/tmp/h/p0",
      pidfile: "/tmp/h/p0/pgbouncer.pid",
      logfile: "/tmp/h/p0/pgbouncer.log",
    },
    log: (m) => log.push(m),
  };
}

function checkOnlyRewrites(settings: StackSettings, version: string): { removed: string[]; log: string[] } {
  const auth = { type: settings.credentials.authType };
  const log: string[] = [];
  const pod = renderIni(podIniInput(settings, auth)).split("\n");
  const harness = harnessIni(settings, auth, rewrites(version, log)).split("\n");
  const { removed, added } = lineDiff(pod, harness);
  const db = settings.database;
  const dropsPrepared =
    settings.pool.maxPreparedStatements > 0 && !supportsParameter(version, "max_prepared_statements");
  const expectedRemoved = [
    `${db.name} = host=${db.host} port=${db.port} dbname=${db.name}`,
    ...REWRITTEN.map((k) => pod.find((l) => keyOf(l) === k) as string),
    ...(dropsPrepared ? [`max_prepared_statements = ${settings.pool.maxPreparedStatements}`] : []),
  ];
  assert.deepEqual([...removed].sort(), [...expectedRemoved].sort());
  assert.deepEqual(added.map(keyOf).sort(), [db.name, ...REWRITTEN].sort());
  assert.ok(added.includes(`${db.name} = host=127.0.0.1 port=40002 dbname=${db.name}`));
  return { removed, log };
}

describe("harness ini (tools/harness)", () => {
  let local: string;
  before(async () => {
    local = await localPgBouncerVersion();
  });

  for (const stack of ["prod", "staging"]) {
    describe(`GIVEN the ${stack} stack's settings`, () => {
      const settings = loadStackSettings(stack);

      it("THEN the harness ini differs from the pod ini only in address, port, paths (and unsupported parameters)", () => {
        const { log } = checkOnlyRewrites(settings, local);
        if (!supportsParameter(local, "max_prepared_statements")) {
          assert.equal(log.length, 1);
          assert.match(
            log[0],
            new RegExp(`maxPreparedStatements ${settings.pool.maxPreparedStatements} -> 0`),
          );
        }
      });

      it("THEN for PgBouncer 1.18 max_prepared_statements is dropped and the change is logged", () => {
        const { removed, log } = checkOnlyRewrites(settings, "1.18.0");
        assert.ok(removed.includes(`max_prepared_statements = ${settings.pool.maxPreparedStatements}`));
        assert.equal(log.length, 1);
        assert.match(log[0], /lacks max_prepared_statements/);
      });

      it("THEN for the pod's own version nothing but the rewritten lines differ and nothing is logged", () => {
        const { removed, log } = checkOnlyRewrites(settings, settings.workload.version);
        assert.deepEqual(log, []);
        assert.ok(!removed.some((l) => l.startsWith("max_prepared_statements")));
      });

      it("THEN pool sizes reach the ini unchanged", () => {
        const ini = harnessIni(settings, { type: settings.credentials.authType }, rewrites(local, []));
        assert.equal(iniValue(ini, "max_db_connections"), String(settings.pool.maxDbConnections));
        assert.equal(iniValue(ini, "default_pool_size"), String(settings.pool.defaultPoolSize));
        assert.equal(iniValue(ini, "pool_mode"), settings.pool.mode);
      });
    });
  }

  it("GIVEN defaults (only the required settings) THEN only the rewritten lines differ", () => {
    checkOnlyRewrites(
      parseSettings({
        database: { maxConnections: 200 },
        monitoring: { runbookBaseUrl: "https://runbooks.example/pgbouncer" },
      }),
      "1.18.0",
    );
  });

  it("GIVEN maxPreparedStatements 0 THEN no adjustment is made", () => {
    const base = loadStackSettings("prod");
    const settings = { ...base, pool: { ...base.pool, maxPreparedStatements: 0 } };
    const log: string[] = [];
    const { adjustments } = harnessIniInput(settings, { type: "scram-sha-256" }, rewrites("1.18.0", log));
    assert.deepEqual(adjustments, []);
    assert.deepEqual(log, []);
  });

  it("GIVEN a missing binary THEN the harness names the Debian package to install", () => {
    assert.throws(
      () => requireBinary("/nonexistent/pgbouncer", "pgbouncer"),
      /install the Debian package "pgbouncer"/,
    );
  });

  describe("GIVEN prod with two processes per pod (peering over per-process unix sockets)", () => {
    const prod = loadStackSettings("prod");
    const two: StackSettings = {
      ...prod,
      workload: { ...prod.workload, processesPerPod: 2 },
      pool: { ...prod.pool, maxDbConnections: 25, defaultPoolSize: 25 },
    };
    const auth = { type: two.credentials.authType };
    const dirs = ["/tmp/h/p0", "/tmp/h/p1"];

    it("THEN on 1.18 so_reuseport stays, peering is dropped and the drop is logged", () => {
      const log: string[] = [];
      const r = { ...rewrites("1.18.0", log), processIndex: 1, peerSocketDirs: dirs };
      const harness = harnessIni(two, auth, r).split("\n");
      const pod = renderIni(podIniInputs(two, auth)[1]).split("\n");
      const { removed } = lineDiff(pod, harness);
      assert.ok(harness.includes("so_reuseport = 1"));
      assert.ok(removed.includes("peer_id = 2"));
      assert.ok(removed.includes("[peers]"));
      assert.ok(!harness.some((l) => l.startsWith("peer_id") || l === "[peers]"));
      assert.ok(log.some((m) => /lacks peering/.test(m)));
    });

    it("THEN on a release with peering the peers point at the local socket directories", () => {
      const log: string[] = [];
      const ini = harnessIni(two, auth, {
        ...rewrites("1.25.2", log),
        processIndex: 1,
        peerSocketDirs: dirs,
      });
      assert.equal(iniValue(ini, "peer_id"), "2");
      assert.ok(ini.includes(`[peers]\n1 = host=${dirs[0]}\n2 = host=${dirs[1]}\n`), ini);
      assert.deepEqual(log, []);
      assert.throws(
        () => harnessIni(two, auth, { ...rewrites("1.25.2", []), processIndex: 1 }),
        /peerSocketDirs/,
      );
    });

    it("THEN peering in the harness ini is refused by the renderer itself on 1.18", () => {
      const input = {
        ...podIniInputs(two, auth)[0],
        version: "1.18.0",
        pool: { ...two.pool, maxPreparedStatements: 0 },
      };
      assert.throws(() => renderIni(input), UnsupportedParameterError);
    });
  });
});
