import * as assert from "assert";
import {
  type IniInput,
  UnsupportedParameterError,
  pgbouncerParameters,
  renderIni,
  podIniInput,
  compareVersions,
  supportsParameter,
} from "../../components/pgbouncer";
import { loadStackSettings } from "../../stacks/settings";

const prod = loadStackSettings("prod");
const prodInput: IniInput = podIniInput(prod, { type: "scram-sha-256" }, prod.namespace);

/** The `[pgbouncer]` section as a map. */
function params(ini: string): Map<string, string> {
  const section = ini.split("[pgbouncer]")[1].split(/^\[/m)[0];
  const map = new Map<string, string>();
  for (const line of section.split("\n")) {
    const m = /^(\w+) = ?(.*)$/.exec(line);
    if (m) map.set(m[1], m[2]);
  }
  return map;
}

describe("pgbouncer.ini renderer", () => {
  it("renders the prod pool exactly as the spec sets it", () => {
    const p = params(renderIni(prodInput));
    assert.deepStrictEqual(
      Object.fromEntries(
        [
          "pool_mode",
          "default_pool_size",
          "min_pool_size",
          "max_db_connections",
          "max_client_conn",
          "query_wait_timeout",
          "server_idle_timeout",
          "server_lifetime",
          "server_login_retry",
          "listen_port",
          "ignore_startup_parameters",
          "stats_users",
          "auth_type",
          "max_prepared_statements",
        ].map((k) => [k, p.get(k)]),
      ),
      {
        pool_mode: "transaction",
        default_pool_size: "50",
        min_pool_size: "10",
        max_db_connections: "50",
        max_client_conn: "500",
        query_wait_timeout: "120",
        server_idle_timeout: "600",
        server_lifetime: "3600",
        server_login_retry: "1",
        listen_port: "6432",
        ignore_startup_parameters: "extra_float_digits",
        stats_users: "pgbouncer_exporter",
        auth_type: "scram-sha-256",
        max_prepared_statements: "200",
      },
    );
  });

  it("routes the database to PostgreSQL under its own name", () => {
    assert.match(
      renderIni(prodInput),
      /^\[databases\]\nclipper = host=postgres\.clipper\.svc\.cluster\.local port=5432 dbname=clipper$/m,
    );
  });

  it("turns off the pidfile and logfile in the pod (read-only root filesystem); each process's script names its socket", () => {
    const p = params(renderIni(prodInput));
    assert.deepStrictEqual(
      [p.get("unix_socket_dir"), p.get("peer_id"), p.get("pidfile"), p.get("logfile")],
      [undefined, undefined, "", ""],
    );
  });

  it("refuses max_prepared_statements for PgBouncer 1.18, which would not start with it", () => {
    assert.throws(
      () => renderIni({ ...prodInput, version: "1.18.0" }),
      (e: unknown) =>
        e instanceof UnsupportedParameterError &&
        e.parameter === "max_prepared_statements" &&
        /PgBouncer 1\.18\.0 does not accept "max_prepared_statements" \(it arrived in 1\.21\.0\)/.test(
          e.message,
        ),
    );
  });

  it("leaves max_prepared_statements out when it is 0, so 1.18 can read the file", () => {
    const ini = renderIni({
      ...prodInput,
      process: undefined,
      version: "1.18.0",
      pool: { ...prod.pool, maxPreparedStatements: 0 },
    });
    assert.ok(!ini.includes("max_prepared_statements"));
  });

  it("writes max_prepared_statements = 0 where the release has it (its default is 200 since 1.24)", () => {
    const ini = renderIni({ ...prodInput, pool: { ...prod.pool, maxPreparedStatements: 0 } });
    assert.equal(prodInput.version, "1.25.2");
    assert.match(ini, /^max_prepared_statements = 0$/m);
  });

  it("refuses auth_dbname before 1.19 and accepts it after", () => {
    const auth = {
      type: "scram-sha-256" as const,
      file: "/x",
      query: { user: "pgbouncer_auth", query: "SELECT 1", dbname: "postgres" },
    };
    const base = { ...prodInput, auth, pool: { ...prod.pool, maxPreparedStatements: 0 } };
    assert.throws(() => renderIni({ ...base, version: "1.18.0" }), /does not accept "auth_dbname"/);
    assert.match(renderIni({ ...base, version: "1.19.0" }), /^auth_dbname = postgres$/m);
  });

  it("routes auth_dbname in [databases] (PgBouncer refuses lookups into a database it does not list)", () => {
    const query = { user: "pgbouncer_auth", query: "SELECT 1", dbname: "clipper_auth" };
    const ini = renderIni({ ...prodInput, auth: { ...prodInput.auth, query } });
    const db = prodInput.database;
    const databases = ini.split("[databases]\n")[1].split("\n\n")[0].split("\n");
    assert.deepEqual(databases, [
      `${db.name} = host=${db.host} port=${db.port} dbname=${db.name}`,
      `clipper_auth = host=${db.host} port=${db.port} dbname=clipper_auth`,
    ]);
    const same = renderIni({
      ...prodInput,
      auth: { ...prodInput.auth, query: { ...query, dbname: db.name } },
    });
    assert.equal(same.split("[databases]\n")[1].split("\n\n")[0].split("\n").length, 1);
  });

  it("refuses peering ([peers], peer_id) before 1.19", () => {
    const process = { soReuseport: true, peerId: 1, peers: [{ id: 1, host: "/tmp/p1" }] };
    const base = { ...prodInput, process, pool: { ...prod.pool, maxPreparedStatements: 0 } };
    assert.throws(() => renderIni({ ...base, version: "1.18.0" }), /does not accept "peer_id"/);
    assert.throws(
      () => renderIni({ ...base, process: { ...process, peerId: undefined }, version: "1.18.0" }),
      /does not accept "\[peers\]"/,
    );
    const ini = renderIni({ ...base, version: "1.25.2" });
    assert.match(ini, /^so_reuseport = 1$/m);
    assert.match(ini, /^\[peers\]\n1 = host=\/tmp\/p1$/m);
  });

  it("refuses releases older than scram-sha-256 support", () => {
    assert.throws(() => renderIni({ ...prodInput, version: "1.13.0" }), /older than 1\.14\.0/);
  });

  it("refuses a value that would break out of its line", () => {
    assert.throws(
      () => renderIni({ ...prodInput, auth: { ...prodInput.auth, file: "/x\nadmin_users = evil" } }),
      /auth_file must be a single line/,
    );
  });

  it("emits every parameter only once", () => {
    const names = pgbouncerParameters(prodInput).map(([k]) => k);
    assert.deepStrictEqual(names, [...new Set(names)]);
  });
});

describe("PgBouncer versions", () => {
  it("orders versions numerically, not as text", () => {
    assert.ok(compareVersions("1.9.0", "1.18.0") < 0);
    assert.ok(compareVersions("1.25.2", "1.25.10") < 0);
    assert.strictEqual(compareVersions("1.25.2", "1.25.2"), 0);
  });
  it("knows when max_prepared_statements arrived", () => {
    assert.strictEqual(supportsParameter("1.20.1", "max_prepared_statements"), false);
    assert.strictEqual(supportsParameter("1.21.0", "max_prepared_statements"), true);
    assert.strictEqual(supportsParameter("1.14.0", "pool_mode"), true);
  });
  it("refuses a malformed version", () => {
    assert.throws(() => compareVersions("1.25", "1.25.2"), /not a PgBouncer version/);
  });
});
