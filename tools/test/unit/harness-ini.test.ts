import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  POD_SCRIPT,
  POD_SCRIPT_NAME,
  UnsupportedParameterError,
  renderIni,
  podIniInput,
  iniParameter,
  PGBOUNCER_RELEASE,
} from "../../../components/pgbouncer";
import { parseSettings, type StackSettings, loadStackSettings } from "../../../stacks/settings";
import { type HarnessRewrites, harnessIni, localPgBouncerVersion } from "../../harness";
import { requireBinary } from "../../harness/proc";

/** An ini as PgBouncer reads it: section -> key -> value, a later line winning, `%include` lines left out. */
type IniMap = Record<string, Record<string, string>>;

function parse(text: string): IniMap {
  const out: IniMap = {};
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith(";") || line.startsWith("%include")) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1];
      out[section] ??= {};
      continue;
    }
    const kv = /^([A-Za-z_0-9]+)\s*=\s*(.*)$/.exec(line);
    if (kv) (out[section] ??= {})[kv[1]] = kv[2];
  }
  return out;
}

const ROOT = "/tmp/h";
/** The TLS file paths, rewritten where the pod's ini has them; the modes and protocols never. */
const TLS_FILES = {
  client_tls_cert_file: `${ROOT}/tls/tls.crt`,
  client_tls_key_file: `${ROOT}/tls/tls.key`,
  /** the pod's own certificate (components/pgbouncer/tls-ini.ts) */
  client_tls_ca_file: `${ROOT}/tls/tls.crt`,
  server_tls_ca_file: `${ROOT}/tls/server-ca.crt`,
} as const;
/** The processes' socket folders, named as the pod names them (`<root>/<process>`). */
const DIRS = [`${ROOT}/1`, `${ROOT}/2`];
const PORT = 40001;

function rewrites(processIndex = 0): HarnessRewrites {
  return {
    listen: { addr: "127.0.0.1", port: PORT },
    database: { host: "127.0.0.1", port: 40002 },
    paths: {
      authFile: `${ROOT}/userlist.txt`,
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

/**
 * The lines pod 0's script appends for process `index` (0-based) after its `%include` of the shared ini: the
 * script itself, asked (`--process-ini`), run by real `/bin/sh`.
 */
function scriptLines(settings: StackSettings, index: number): string {
  const r = spawnSync("/bin/sh", ["-c", POD_SCRIPT, POD_SCRIPT_NAME, "--process-ini"], {
    encoding: "utf8",
    env: {
      PATH: "/usr/bin:/bin",
      PGBOUNCER_POD_NAME: "pgbouncer-0",
      PGBOUNCER_PROCESS: String(index + 1),
      PGBOUNCER_PROCESSES: String(settings.workload.processesPerPod),
      PGBOUNCER_PORT: String(PORT),
      PGBOUNCER_LISTEN_ADDR: "127.0.0.1",
      PGBOUNCER_SOURCES: "",
      PGBOUNCER_CURRENT: `${ROOT}/applied/current`,
      PGBOUNCER_SOCKET_DIR: DIRS[index],
      PGBOUNCER_CHECK_SECONDS: "10",
      PGBOUNCER_CANARY: "",
      PGBOUNCER_CANARY_HOLD_SECONDS: "0",
      PGBOUNCER_FAILURE_SECONDS: "10",
      PGBOUNCER_DRAIN_SECONDS: "0",
      PGBOUNCER_CHECK_LOGINS: "0",
    },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/**
 * What process `index` of pod 0 runs, as PgBouncer reads it: the pod's shared ini (as the ConfigMap holds it)
 * with its script's lines after it, and the harness's rewrites applied: address, port, database host and
 * port, file paths. The pod's own peers are its processes' sockets; the other pods' are not in a standalone
 * harness.
 */
function podProcess(settings: StackSettings, index: number): IniMap {
  const auth = { type: settings.credentials.authType };
  const shared = parse(renderIni(podIniInput(settings, auth, "harness")));
  const own = parse(`[pgbouncer]\n${scriptLines(settings, index)}`);
  const r = rewrites(index);
  const db = settings.database;
  const pgb = { ...shared.pgbouncer, ...own.pgbouncer };
  pgb.listen_addr = r.listen.addr;
  pgb.listen_port = String(r.listen.port);
  pgb.auth_file = r.paths.authFile;
  pgb.pidfile = r.paths.pidfile;
  pgb.logfile = r.paths.logfile;
  for (const k of Object.keys(TLS_FILES)) {
    if (pgb[k] !== undefined) pgb[k] = TLS_FILES[k as keyof typeof TLS_FILES];
  }
  const peers = own.peers ?? {};
  return {
    databases: { [db.name]: `host=127.0.0.1 port=40002 dbname=${db.name}` },
    ...(Object.keys(peers).length > 0 ? { peers } : {}),
    pgbouncer: pgb,
  };
}

/** The harness's ini of process `index`, as PgBouncer reads it. */
function harnessProcess(settings: StackSettings, index: number): IniMap {
  return parse(harnessIni(settings, { type: settings.credentials.authType }, rewrites(index)));
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

      it("THEN the harness ini is what pod 0's process runs (the shared ini and its script's lines), but for addresses, ports and paths", () => {
        assert.deepEqual(harnessProcess(settings, 0), podProcess(settings, 0));
      });

      it("THEN the TLS modes and protocols reach the ini unchanged, the TLS files point at the local ones", () => {
        const ini = harnessIni(settings, { type: settings.credentials.authType }, rewrites());
        const p = (k: string) => iniParameter(ini, "pgbouncer", k);
        assert.equal(p("client_tls_sslmode"), settings.tls.clientSslMode);
        assert.equal(p("server_tls_sslmode"), settings.tls.serverSslMode);
        assert.equal(p("client_tls_protocols"), settings.tls.protocols);
        assert.equal(p("client_tls_cert_file"), TLS_FILES.client_tls_cert_file);
        assert.equal(p("client_tls_key_file"), TLS_FILES.client_tls_key_file);
        assert.equal(p("client_tls_ca_file"), TLS_FILES.client_tls_ca_file);
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
    const settings = parseSettings({
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
    });
    assert.deepEqual(harnessProcess(settings, 0), podProcess(settings, 0));
  });

  it("GIVEN a harness that dropped a parameter THEN the comparison fails (the check can fail)", () => {
    const settings = loadStackSettings("prod");
    const harness = harnessProcess(settings, 0);
    delete harness.pgbouncer.max_prepared_statements;
    assert.throws(() => assert.deepEqual(harness, podProcess(settings, 0)), /max_prepared_statements/);
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
      it(`THEN process ${i + 1}'s harness ini is what its script gives it: so_reuseport, peer_id and its pod's [peers]`, () => {
        assert.deepEqual(harnessProcess(two, i), podProcess(two, i));
        const ini = harnessIni(two, auth, rewrites(i));
        assert.equal(iniParameter(ini, "pgbouncer", "so_reuseport"), "1");
        assert.equal(iniParameter(ini, "pgbouncer", "peer_id"), String(i + 1));
        assert.deepEqual(parse(ini).peers, {
          1: `host=${DIRS[0]} port=${PORT}`,
          2: `host=${DIRS[1]} port=${PORT}`,
        });
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
        ...podIniInput(two, auth, "harness"),
        version: "1.18.0",
        pool: { ...two.pool, maxPreparedStatements: 0 },
      };
      assert.throws(() => renderIni(input), UnsupportedParameterError);
    });
  });
});
