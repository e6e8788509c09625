import type { IniAuthSettings } from "../credentials";
import type { PoolSettings } from "./settings";
import { type IniTls, tlsParameters } from "./tls-ini";
import {
  OLDEST_SUPPORTED,
  PARAMETER_SINCE,
  SECTION_SINCE,
  compareVersions,
  supportsParameter,
  supportsSection,
} from "./versions";

/** How PgBouncer authenticates clients: the credentials' settings and the auth file's path. */
export interface IniAuth extends IniAuthSettings {
  /** `auth_file`: path of the userlist inside the container. */
  readonly file: string;
}

/**
 * Peering (1.19+): `[peers]` to forward cancel requests to the process that owns the query, and what one
 * process says of itself. The pod's shared ini lists every peer of the fleet and leaves `peer_id` and
 * `so_reuseport` to each process's script (./pgbouncer-pod.sh); a standalone process (the local harness)
 * says them here.
 */
export interface IniProcess {
  /** `so_reuseport`: processes share the listening port. @default not written */
  readonly soReuseport?: boolean;
  /** `peer_id` of this process. @default not written */
  readonly peerId?: number;
  readonly peers?: readonly { readonly id: number; readonly host: string; readonly port?: number }[];
}

/** Everything the ini depends on; paths, address and port are what differs between a pod and a test. */
export interface IniInput {
  /** The PgBouncer release that will read the file. */
  readonly version: string;
  readonly listen: { readonly addr: string; readonly port: number };
  readonly database: { readonly name: string; readonly host: string; readonly port: number };
  readonly pool: PoolSettings;
  readonly auth: IniAuth;
  readonly statsUsers: readonly string[];
  readonly adminUsers: readonly string[];
  /**
   * Empty strings turn each off (no unix socket, no pidfile, log to stderr). Without `unixSocketDir` the ini
   * names none: each process of a pod says its own (./pgbouncer-pod.sh).
   */
  readonly paths: { readonly unixSocketDir?: string; readonly pidfile: string; readonly logfile: string };
  readonly process?: IniProcess;
  /** Both TLS legs: modes, files, protocols. */
  readonly tls: IniTls;
}

/** Thrown when the target PgBouncer release would refuse the file. */
export class UnsupportedParameterError extends Error {
  constructor(
    readonly parameter: string,
    readonly version: string,
    since: string,
  ) {
    super(
      `PgBouncer ${version} does not accept "${parameter}" (it arrived in ${since}); refusing to render it`,
    );
    this.name = "UnsupportedParameterError";
  }
}

type Value = string | number;

/** The parameters of the `[pgbouncer]` section, in file order. */
export function pgbouncerParameters(input: IniInput): [string, Value][] {
  const { pool, auth } = input;
  const params: [string, Value][] = [
    ["listen_addr", input.listen.addr],
    ["listen_port", input.listen.port],
    ...(input.paths.unixSocketDir !== undefined
      ? [["unix_socket_dir", input.paths.unixSocketDir] as [string, Value]]
      : []),
    ["pidfile", input.paths.pidfile],
    ["logfile", input.paths.logfile],
    ["auth_type", auth.type],
    ["auth_file", auth.file],
  ];
  if (auth.query) {
    params.push(["auth_user", auth.query.user], ["auth_query", auth.query.query]);
    if (auth.query.dbname !== undefined) params.push(["auth_dbname", auth.query.dbname]);
  }
  params.push(
    ["admin_users", input.adminUsers.join(",")],
    ["stats_users", input.statsUsers.join(",")],
    ["pool_mode", pool.mode],
    ["default_pool_size", pool.defaultPoolSize],
    ["min_pool_size", pool.minPoolSize],
    ["reserve_pool_size", pool.reservePoolSize],
    ["reserve_pool_timeout", pool.reservePoolTimeoutSeconds],
    ["max_db_connections", pool.maxDbConnections],
    ["max_client_conn", pool.maxClientConn],
    ["query_wait_timeout", pool.queryWaitTimeoutSeconds],
    ["server_idle_timeout", pool.serverIdleTimeoutSeconds],
    ["server_lifetime", pool.serverLifetimeSeconds],
    ["server_login_retry", pool.serverLoginRetrySeconds],
    // The exporter (and many drivers) send it; PgBouncer would refuse the login otherwise.
    ["ignore_startup_parameters", "extra_float_digits"],
    ...tlsParameters(input.tls),
  );
  // 0 is PgBouncer's "off". It must be written where the release has the parameter: since 1.24 its
  // default is 200, so leaving it out would turn prepared statements on. Releases before 1.21 lack it
  // (and are off): leave it out there, so they can read the file.
  if (pool.maxPreparedStatements > 0 || supportsParameter(input.version, "max_prepared_statements")) {
    params.push(["max_prepared_statements", pool.maxPreparedStatements]);
  }
  if (input.process?.soReuseport) params.push(["so_reuseport", 1]);
  if (input.process?.peerId !== undefined) params.push(["peer_id", input.process.peerId]);
  return params;
}

function checkValue(name: string, value: Value): void {
  if (typeof value === "string" && /[\r\n]/.test(value)) {
    throw new Error(`pgbouncer.ini parameter ${name} must be a single line, got ${JSON.stringify(value)}`);
  }
}

/** Renders pgbouncer.ini for `input.version`, refusing any parameter that release does not accept. */
export function renderIni(input: IniInput): string {
  if (compareVersions(input.version, OLDEST_SUPPORTED) < 0) {
    throw new Error(
      `PgBouncer ${input.version} is older than ${OLDEST_SUPPORTED}, the oldest release supported`,
    );
  }
  const params = pgbouncerParameters(input);
  const { auth } = input;
  for (const [name, value] of params) {
    if (!supportsParameter(input.version, name)) {
      throw new UnsupportedParameterError(name, input.version, PARAMETER_SINCE[name]);
    }
    checkValue(name, value);
  }
  const db = input.database;
  // PgBouncer looks auth_dbname up in [databases] and refuses every lookup login ("bouncer config error")
  // when it is not there: route it to the same server.
  const authDb = auth.query?.dbname;
  const peers = input.process?.peers ?? [];
  if (peers.length > 0 && !supportsSection(input.version, "peers")) {
    throw new UnsupportedParameterError("[peers]", input.version, SECTION_SINCE.peers);
  }
  // [pgbouncer] comes last: a process's own settings, appended by its script after an %include of this
  // file, continue that section (a second [pgbouncer] header would reset every setting to its default).
  const lines = [
    "; Rendered by the clipper-pgbouncer Pulumi program; edit the stack settings, not this file.",
    "[databases]",
    `${db.name} = host=${db.host} port=${db.port} dbname=${db.name}`,
    ...(authDb !== undefined && authDb !== db.name
      ? [`${authDb} = host=${db.host} port=${db.port} dbname=${authDb}`]
      : []),
    ...(peers.length > 0
      ? [
          "",
          "[peers]",
          ...peers.map((p) => `${p.id} = host=${p.host}${p.port !== undefined ? ` port=${p.port}` : ""}`),
        ]
      : []),
    "",
    "[pgbouncer]",
    ...params.map(([k, v]) => `${k} = ${v}`),
  ];
  return lines.join("\n") + "\n";
}
