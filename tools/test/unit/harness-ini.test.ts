import * as assert from "node:assert/strict";
import {
  UnsupportedParameterError,
  renderIni,
  podIniInputs,
  iniParameter,
  PGBOUNCER_RELEASE,
} from "../../../components/pgbouncer";
import { parseSettings, type StackSettings, loadStackSettings } from "../../../stacks/settings";
import { type HarnessRewrites, harnessIni, localPgBouncerVersion } from "../../harness";
import { requireBinary } from "../../harness/proc";

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

const keyOf = (line: string) => /^([a-z_0-9]+) =/.exec(line)?.[1] ?? line;

/** Parameters the harness may rewrite; the database line may differ in host and port only. */
const REWRITTEN = ["listen_addr", "listen_port", "unix_socket_dir", "pidfile", "logfile", "auth_file"];
/** The TLS file paths, rewritten where the pod's ini has them; the modes and protocols never. */
const TLS_FILES = {
  client_tls_cert_file: "/tmp/h/tls/tls.crt",
  client_tls_key_file: "/tmp/h/tls/tls.key",
  server_tls_ca_file: "/tmp/h/tls/server-ca.crt",
} as const;
const DIRS = ["/tmp/h/p0", "/tmp/h/p1"];

function rewrites(processIndex = 0): HarnessRewrites {
  return {
    listen: { addr: "127.0.0.1", port: 40001 },
    database: { host: "127.0.0.1", port: 40002 },
    paths: {
      authFile: "/tmp/h/userlist.txt",
      unixSocketDir: DIRS[processIndex],
      pidfile: `${DIRS[processIndex]}/pgbouncer.pid`,
      logfile: `${DIRS[processIndex]}/pgbouncer.log`,
    },
    processIndex,
    peerSocketDirs: DIRS,
    tls: {
      certFile: TLS_FILES.client_tls_cert_file,
      keyFile: TLS_FILES.client_tls_key_file,
      serverCaFile: TLS_FILES.server_tls_ca_file,
    },
  };
}

/** Keys of `[section] key = value` lines (sections named), so a peer line and a parameter never collide. */
function keys(lines: readonly string[]): string[] {
  let section = "";
  const out: string[] = [];
  for (const l of lines) {
    const s = /^\[(\w+)\]$/.exec(l);
    if (s) section = s[1];
    else if (/^[a-z_0-9]+ =/.test(l)) out.push(`${section}.${keyOf(l)}`);
  }
  return out;
}

/**
 * Diffs the pod's ini of one process against the harness's: only the rewritten lines may differ, and no
 * parameter or section of the pod's ini may be missing from the harness's. Returns the dropped keys.
 */
function checkOnlyRewrites(settings: StackSettings, processIndex = 0): string[] {
  const auth = { type: settings.credentials.authType };
  const pod = renderIni(podIniInputs(settings, auth)[processIndex]).split("\n");
  const harness = harnessIni(settings, auth, rewrites(processIndex)).split("\n");
  const dropped = keys(pod).filter((k) => !keys(harness).includes(k));
  const sections = (ls: string[]) => ls.filter((l) => /^\[\w+\]$/.test(l));
  assert.deepEqual(sections(harness), sections(pod));
  const { removed, added } = lineDiff(pod, harness);
  const db = settings.database;
  const peers = pod.filter((l) => /^\d+ = host=/.test(l));
  const tlsFiles = Object.keys(TLS_FILES).filter((k) => pod.some((l) => keyOf(l) === k));
  const rewritten = [...REWRITTEN, ...tlsFiles];
  const expectedRemoved = [
    `${db.name} = host=${db.host} port=${db.port} dbname=${db.name}`,
    ...rewritten.map((k) => pod.find((l) => keyOf(l) === k) as string),
    ...peers,
  ];
  assert.deepEqual([...removed].sort(), [...expectedRemoved].sort());
  assert.deepEqual(added.map(keyOf).sort(), [db.name, ...rewritten, ...peers.map(keyOf)].sort());
  for (const k of tlsFiles) {
    assert.ok(added.includes(`${k} = ${TLS_FILES[k as keyof typeof TLS_FILES]}`), `${k} not rewritten`);
  }
  assert.ok(added.includes(`${db.name} = host=127.0.0.1 port=40002 dbname=${db.name}`));
  for (const [j, line] of peers.entries()) {
    const want = `${keyOf(line)} = host=${DIRS[j]} port=40001`;
    assert.ok(added.includes(want), `peer ${keyOf(line)} not rewritten`);
  }
  return dropped;
}

/** prod with two processes per pod: the server cap divided between them, peering over unix sockets. */
function twoProcesses(): StackSettings {
  const prod = loadStackSettings("prod");
  return {
    ...prod,
    workload: { ...prod.workload, processesPerPod: 2 },
    pool: { ...prod.pool, maxDbConnections: 25, defaultPoolSize: 25 },
  };
}

describe("harness ini (tools/harness)", () => {
  for (const stack of ["prod", "staging"]) {
    describe(`GIVEN the ${stack} stack's settings`, () => {
      const settings = loadStackSettings(stack);

      it("THEN the harness ini differs from the pod ini only in address, port and paths: zero dropped parameters", () => {
        assert.deepEqual(checkOnlyRewrites(settings), []);
      });

      it("THEN the TLS modes and protocols reach the ini unchanged, the TLS files point at the local ones", () => {
        const ini = harnessIni(settings, { type: settings.credentials.authType }, rewrites());
        const p = (k: string) => iniParameter(ini, "pgbouncer", k);
        assert.equal(p("client_tls_sslmode"), settings.tls.clientSslMode);
        assert.equal(p("server_tls_sslmode"), settings.tls.serverSslMode);
        assert.equal(p("client_tls_protocols"), settings.tls.protocols);
        assert.equal(p("client_tls_cert_file"), TLS_FILES.client_tls_cert_file);
        assert.equal(p("client_tls_key_file"), TLS_FILES.client_tls_key_file);
        if (settings.tls.serverCa) assert.equal(p("server_tls_ca_file"), TLS_FILES.server_tls_ca_file);
        else assert.equal(p("server_tls_ca_file"), undefined);
      });

      it("THEN max_prepared_statements and the pool sizes reach the ini unchanged", () => {
        const ini = harnessIni(settings, { type: settings.credentials.authType }, rewrites());
        assert.equal(
          iniParameter(ini, "pgbouncer", "max_prepared_statements"),
          String(settings.pool.maxPreparedStatements),
        );
        assert.ok(settings.pool.maxPreparedStatements > 0);
        assert.equal(
          iniParameter(ini, "pgbouncer", "max_db_connections"),
          String(settings.pool.maxDbConnections),
        );
        assert.equal(
          iniParameter(ini, "pgbouncer", "default_pool_size"),
          String(settings.pool.defaultPoolSize),
        );
        assert.equal(iniParameter(ini, "pgbouncer", "pool_mode"), settings.pool.mode);
      });
    });
  }

  it("GIVEN defaults (only the required settings) THEN only the rewritten lines differ", () => {
    const dropped = checkOnlyRewrites(
      parseSettings({
        // where the stack deploys: required, and written into no ini
        providers: {
          kubernetesContext: "clipper-test",
          vaultAddress: "https://vault.example:8200",
          grafanaUrl: "https://grafana.example",
        },
        database: { maxConnections: 200 },
        monitoring: { runbookBaseUrl: "https://runbooks.example/pgbouncer" },
        // required by the default server_tls_sslmode verify-full
        tls: { serverCa: { source: "configmap", name: "postgres-ca", key: "ca.crt" } },
      }),
    );
    assert.deepEqual(dropped, []);
  });

  it("GIVEN a harness that dropped a parameter THEN the diff check fails (the check can fail)", () => {
    const settings = loadStackSettings("prod");
    const auth = { type: settings.credentials.authType };
    const pod = renderIni(podIniInputs(settings, auth)[0]).split("\n");
    const harness = harnessIni(settings, auth, rewrites())
      .split("\n")
      .filter((l) => !l.startsWith("max_prepared_statements"));
    assert.deepEqual(
      keys(pod).filter((k) => !keys(harness).includes(k)),
      ["pgbouncer.max_prepared_statements"],
    );
    assert.notDeepEqual(
      lineDiff(pod, harness).removed.filter((l) => l.startsWith("max_prep")),
      [],
    );
  });

  it("GIVEN the harness THEN the local PgBouncer is the release the stacks deploy", async () => {
    assert.equal(await localPgBouncerVersion(), PGBOUNCER_RELEASE.version);
    for (const stack of ["prod", "staging"]) {
      assert.equal(loadStackSettings(stack).workload.version, PGBOUNCER_RELEASE.version);
    }
  });

  it("GIVEN a missing binary THEN the harness names the package to install", () => {
    assert.throws(
      () => requireBinary("/nonexistent/pgbouncer", "pgbouncer"),
      /install the Debian package "pgbouncer"/,
    );
  });

  describe("GIVEN prod with two processes per pod (peering over per-process unix sockets)", () => {
    const two = twoProcesses();
    const auth = { type: two.credentials.authType };

    for (const i of [0, 1]) {
      it(`THEN process ${i + 1}'s harness ini keeps so_reuseport, peer_id and [peers]: zero dropped parameters`, () => {
        assert.deepEqual(checkOnlyRewrites(two, i), []);
        const ini = harnessIni(two, auth, rewrites(i));
        assert.equal(iniParameter(ini, "pgbouncer", "so_reuseport"), "1");
        assert.equal(iniParameter(ini, "pgbouncer", "peer_id"), String(i + 1));
        assert.ok(
          ini.includes(`[peers]\n1 = host=${DIRS[0]} port=40001\n2 = host=${DIRS[1]} port=40001\n`),
          ini,
        );
      });
    }

    it("THEN without the local socket directories the harness refuses to render peering", () => {
      assert.throws(
        () => harnessIni(two, auth, { ...rewrites(1), peerSocketDirs: undefined }),
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
