import {
  CPU_QUANTITY,
  ConfigReader,
  DNS_LABEL,
  DNS_NAME,
  IssueList,
  MEMORY_QUANTITY,
  PG_IDENTIFIER,
} from "../common";
import { type PoolBudget, poolBudget } from "./budget";
import { PGBOUNCER_RELEASE } from "./release";
import { type WhenUnsatisfiable, ZONE_TOPOLOGY_KEY } from "./spread";
import { OLDEST_SECURE, compareVersions, isVersion } from "./versions";
import { type EgressSettings, IPV4_CIDR, databasePeer } from "./egress";
import type { TlsSettings } from "./tls";

/** How PgBouncer hands server connections to clients. */
export type PoolMode = "transaction" | "session" | "statement";

/** Pool sizes and timeouts; every size is per PgBouncer process. */
export interface PoolSettings {
  /** `pool_mode`. @default transaction: a server connection is held only for a transaction (OLTP). */
  readonly mode: PoolMode;
  /** `default_pool_size`: server connections per (database, user) pair. @default 50 */
  readonly defaultPoolSize: number;
  /** `min_pool_size`: kept open while the pool has a client; does not pre-warm an idle pool. @default 10 */
  readonly minPoolSize: number;
  /** `reserve_pool_size`: extra connections after `reservePoolTimeoutSeconds` of waiting. @default 0 */
  readonly reservePoolSize: number;
  /** `reserve_pool_timeout`. @default 5 */
  readonly reservePoolTimeoutSeconds: number;
  /**
   * `max_db_connections`: the per-process server cap, the one number the pool budget, the alert thresholds
   * and the dashboard derive from. @default 50
   */
  readonly maxDbConnections: number;
  /** `max_client_conn`: client connections one process accepts. @default 500 */
  readonly maxClientConn: number;
  /** `query_wait_timeout`: a client waiting longer for a server is disconnected. @default 120 */
  readonly queryWaitTimeoutSeconds: number;
  /** `server_idle_timeout`: idle server connections above min_pool_size close after this. @default 600 */
  readonly serverIdleTimeoutSeconds: number;
  /** `server_lifetime`: server connections are recycled after this. @default 3600 */
  readonly serverLifetimeSeconds: number;
  /**
   * `server_login_retry`: after a failed server login (PostgreSQL restarting), PgBouncer refuses clients
   * this long before it tries again. @default 1 (PgBouncer's own 15 kept clients out for 15 s after a
   * 0.3 s PostgreSQL restart here; 1 recovered in 1.1 s, see docs/tuning.md)
   */
  readonly serverLoginRetrySeconds: number;
  /**
   * `max_prepared_statements`: protocol-level prepared statements in transaction mode (PgBouncer 1.21+);
   * 0 turns the feature off. @default 200
   */
  readonly maxPreparedStatements: number;
}

/** The PostgreSQL server PgBouncer pools for. */
export interface DatabaseSettings {
  /** Host name of PostgreSQL, usually its Service. @default postgres */
  readonly host: string;
  /** @default 5432 */
  readonly port: number;
  /** Database name, served under the same name by PgBouncer. @default clipper */
  readonly name: string;
  /**
   * PostgreSQL's `max_connections`, as the server is configured. Required: the pool budget is checked
   * against it, and only the stack knows its database.
   */
  readonly maxConnections: number;
  /** Connections kept for others (superuser reserve, migrations, backups). @default 3 */
  readonly reservedConnections: number;
  /**
   * PostgreSQL's CPU cores, which the program cannot see. When set, a pool far above what those cores can
   * run at once gets a warning (never an error), see {@link poolSizingWarning}. @default unset: no warning
   */
  readonly cpuCores?: number;
}

export interface ResourceSettings {
  /** @default 100m */
  readonly cpuRequest: string;
  /** @default 500m */
  readonly cpuLimit: string;
  /** @default 64Mi */
  readonly memoryRequest: string;
  /** @default 256Mi */
  readonly memoryLimit: string;
}

/** The PgBouncer Deployment. */
export interface WorkloadSettings {
  /** Image repository; the tag is `version`. @default ghcr.io/cloudnative-pg/pgbouncer */
  readonly image: string;
  /**
   * The image's digest (`sha256:…`), pinned next to the tag: `image:version@digest`. The policy pack warns
   * when prod runs without one. @default unset: the tag alone
   */
  readonly digest?: string;
  /**
   * PgBouncer release the image runs; must carry the 1.25.2 security fixes.
   * @default the release in `components/pgbouncer/pgbouncer-release.json` (1.25.2), which the tests also run
   */
  readonly version: string;
  /** @default 2 */
  readonly replicas: number;
  /** PgBouncer processes per pod (`so_reuseport`). @default 1 */
  readonly processesPerPod: number;
  /** Client port; the Service exposes it too. @default 6432 */
  readonly port: number;
  readonly resources: ResourceSettings;
  /**
   * Seconds the pod keeps serving after it is marked terminating, so that endpoints drop it before
   * PgBouncer stops accepting. @default 10
   */
  readonly preStopDelaySeconds: number;
  /**
   * Hard deadline for the pod to stop; in-flight transactions get what is left after the preStop delay.
   * @default 120
   */
  readonly terminationGracePeriodSeconds: number;
  /** Node label the replicas are spread over. @default kubernetes.io/hostname */
  readonly spreadTopologyKey: string;
  /**
   * What the scheduler does when no node keeps the spread over `spreadTopologyKey` within a skew of 1.
   * `DoNotSchedule` keeps the pod Pending rather than put it next to another replica while some other
   * usable node exists, even one without room for it (the policy pack then requires
   * `nodeTaintsPolicy: Honor`, which is always rendered).
   * @default ScheduleAnyway: two replicas on one node beat one replica during maintenance
   * (docs/runbook.md, "Maintenance")
   */
  readonly spreadWhenUnsatisfiable: WhenUnsatisfiable;
  /**
   * Also spread, softly (`ScheduleAnyway`), over `topology.kubernetes.io/zone`. Only for clusters whose
   * nodes all carry that label: a node without it gets no spread score at all, so on a cluster without
   * zone labels the soft hostname spread would be lost too. @default false
   */
  readonly zoneSpread: boolean;
}

/** The prometheus-community/pgbouncer_exporter sidecar. */
export interface ExporterSettings {
  /** @default prometheuscommunity/pgbouncer-exporter:v0.12.1 */
  readonly image: string;
  /** The image's digest (`sha256:…`), pinned next to the tag. @default unset: the tag alone */
  readonly digest?: string;
  /** @default 9127 */
  readonly port: number;
  /** PgBouncer user the exporter logs in as; listed in `stats_users`. @default pgbouncer_exporter */
  readonly statsUser: string;
}

/** Who may reach the pooler, and what it may reach (NetworkPolicy). */
export interface NetworkSettings extends EgressSettings {
  /** Labels of the backend pods, in the pooler's namespace, that may connect to the client port. */
  readonly backendPodSelector: Readonly<Record<string, string>>;
  /** Labels of the namespace Prometheus runs in. @default kubernetes.io/metadata.name: monitoring */
  readonly prometheusNamespaceSelector: Readonly<Record<string, string>>;
  /** Labels of the Prometheus pods that may scrape the metrics port. */
  readonly prometheusPodSelector: Readonly<Record<string, string>>;
}

/** What one stack sets for the pooler: the PgBouncer component's settings. */
export interface PoolerSettings {
  /** The PgBouncer Deployment (config key `pgbouncer`). */
  readonly workload: WorkloadSettings;
  readonly pool: PoolSettings;
  readonly database: DatabaseSettings;
  readonly exporter: ExporterSettings;
  readonly network: NetworkSettings;
  /** TLS on both legs (config key `tls`). */
  readonly tls: TlsSettings;
}

export const POOL_DEFAULTS: PoolSettings = {
  mode: "transaction",
  defaultPoolSize: 50,
  minPoolSize: 10,
  reservePoolSize: 0,
  reservePoolTimeoutSeconds: 5,
  maxDbConnections: 50,
  maxClientConn: 500,
  queryWaitTimeoutSeconds: 120,
  serverIdleTimeoutSeconds: 600,
  serverLifetimeSeconds: 3600,
  serverLoginRetrySeconds: 1,
  maxPreparedStatements: 200,
};

/** `maxConnections` has no default: it is required. */
export const DATABASE_DEFAULTS: Omit<DatabaseSettings, "maxConnections"> = {
  host: "postgres",
  port: 5432,
  name: "clipper",
  reservedConnections: 3,
};

export const WORKLOAD_DEFAULTS: WorkloadSettings = {
  image: "ghcr.io/cloudnative-pg/pgbouncer",
  version: PGBOUNCER_RELEASE.version,
  replicas: 2,
  processesPerPod: 1,
  port: 6432,
  resources: { cpuRequest: "100m", cpuLimit: "500m", memoryRequest: "64Mi", memoryLimit: "256Mi" },
  preStopDelaySeconds: 10,
  terminationGracePeriodSeconds: 120,
  spreadTopologyKey: "kubernetes.io/hostname",
  spreadWhenUnsatisfiable: "ScheduleAnyway",
  zoneSpread: false,
};

export const EXPORTER_DEFAULTS: ExporterSettings = {
  image: "prometheuscommunity/pgbouncer-exporter:v0.12.1",
  port: 9127,
  statsUser: "pgbouncer_exporter",
};

export const NETWORK_DEFAULTS: NetworkSettings = {
  backendPodSelector: { "app.kubernetes.io/name": "clipper-backend" },
  prometheusNamespaceSelector: { "kubernetes.io/metadata.name": "monitoring" },
  prometheusPodSelector: { "app.kubernetes.io/name": "prometheus" },
  dnsNamespaceSelector: { "kubernetes.io/metadata.name": "kube-system" },
  dnsPodSelector: { "k8s-app": "kube-dns" },
};

/** The Deployment's rolling update: never below the replica count, one extra pod at a time. */
export const ROLLING_SURGE = 1;

const PORT = { min: 1, max: 65535 };
const SECONDS_DAY = { min: 0, max: 86400 };
const IMAGE_REPO = /^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;
const IMAGE_REF = /^[a-z0-9]+([._/:-][a-zA-Z0-9]+)*$/;
/** An image digest as registries print it. */
export const IMAGE_DIGEST = /^sha256:[a-f0-9]{64}$/;

export function readPool(r: ConfigReader): PoolSettings {
  const d = POOL_DEFAULTS;
  const p: PoolSettings = {
    mode: r.oneOf("mode", d.mode, ["transaction", "session", "statement"]),
    defaultPoolSize: r.int("defaultPoolSize", d.defaultPoolSize, { min: 1, max: 10000 }),
    minPoolSize: r.int("minPoolSize", d.minPoolSize, { min: 0, max: 10000 }),
    reservePoolSize: r.int("reservePoolSize", d.reservePoolSize, { min: 0, max: 10000 }),
    reservePoolTimeoutSeconds: r.int("reservePoolTimeoutSeconds", d.reservePoolTimeoutSeconds, SECONDS_DAY),
    maxDbConnections: r.int("maxDbConnections", d.maxDbConnections, { min: 1, max: 10000 }),
    maxClientConn: r.int("maxClientConn", d.maxClientConn, { min: 1, max: 100000 }),
    queryWaitTimeoutSeconds: r.int("queryWaitTimeoutSeconds", d.queryWaitTimeoutSeconds, SECONDS_DAY),
    serverIdleTimeoutSeconds: r.int("serverIdleTimeoutSeconds", d.serverIdleTimeoutSeconds, SECONDS_DAY),
    serverLifetimeSeconds: r.int("serverLifetimeSeconds", d.serverLifetimeSeconds, SECONDS_DAY),
    serverLoginRetrySeconds: r.int("serverLoginRetrySeconds", d.serverLoginRetrySeconds, {
      min: 1,
      max: 3600,
    }),
    maxPreparedStatements: r.int("maxPreparedStatements", d.maxPreparedStatements, { min: 0, max: 100000 }),
  };
  r.rejectUnknown();
  if (p.minPoolSize > p.defaultPoolSize) {
    r.issues.add(
      `${r.key}.minPoolSize`,
      `is ${p.minPoolSize}; must not exceed ${r.key}.defaultPoolSize (${p.defaultPoolSize})`,
    );
  }
  if (p.defaultPoolSize > p.maxDbConnections) {
    r.issues.add(
      `${r.key}.defaultPoolSize`,
      `is ${p.defaultPoolSize}; must not exceed ${r.key}.maxDbConnections (${p.maxDbConnections}), ` +
        `the per-process server cap`,
    );
  }
  if (p.maxClientConn < p.maxDbConnections) {
    r.issues.add(
      `${r.key}.maxClientConn`,
      `is ${p.maxClientConn}; must be at least ${r.key}.maxDbConnections (${p.maxDbConnections}), ` +
        `or the pool can never fill`,
    );
  }
  return p;
}

export function readDatabase(r: ConfigReader): DatabaseSettings {
  const d = DATABASE_DEFAULTS;
  const db: DatabaseSettings = {
    host: r.string("host", d.host, DNS_NAME, "a DNS name"),
    port: r.int("port", d.port, PORT),
    name: r.string("name", d.name, PG_IDENTIFIER, "a lower-case PostgreSQL identifier"),
    maxConnections: r.int("maxConnections", undefined, { min: 1, max: 262143 }),
    reservedConnections: r.int("reservedConnections", d.reservedConnections, { min: 0, max: 262143 }),
    ...(r.has("cpuCores") ? { cpuCores: r.int("cpuCores", undefined, { min: 1, max: 1024 }) } : {}),
  };
  r.rejectUnknown();
  if (db.reservedConnections >= db.maxConnections) {
    r.issues.add(
      `${r.key}.reservedConnections`,
      `is ${db.reservedConnections}; must be below ${r.key}.maxConnections (${db.maxConnections})`,
    );
  }
  return db;
}

export function readWorkload(r: ConfigReader): WorkloadSettings {
  const d = WORKLOAD_DEFAULTS;
  const res = r.child("resources");
  const w: WorkloadSettings = {
    image: r.string("image", d.image, IMAGE_REPO, "an image repository without a tag"),
    ...optionalDigest(r),
    version: r.string("version", d.version, /^\d+\.\d+\.\d+$/, "a PgBouncer release such as 1.25.2"),
    replicas: r.int("replicas", d.replicas, { min: 1, max: 50 }),
    processesPerPod: r.int("processesPerPod", d.processesPerPod, { min: 1, max: 16 }),
    port: r.int("port", d.port, { min: 1024, max: 65535 }),
    resources: {
      cpuRequest: res.string(
        "cpuRequest",
        d.resources.cpuRequest,
        CPU_QUANTITY,
        "a CPU quantity such as 100m",
      ),
      cpuLimit: res.string("cpuLimit", d.resources.cpuLimit, CPU_QUANTITY, "a CPU quantity such as 500m"),
      memoryRequest: res.string(
        "memoryRequest",
        d.resources.memoryRequest,
        MEMORY_QUANTITY,
        "a memory quantity such as 64Mi",
      ),
      memoryLimit: res.string(
        "memoryLimit",
        d.resources.memoryLimit,
        MEMORY_QUANTITY,
        "a memory quantity such as 256Mi",
      ),
    },
    preStopDelaySeconds: r.int("preStopDelaySeconds", d.preStopDelaySeconds, { min: 0, max: 300 }),
    terminationGracePeriodSeconds: r.int("terminationGracePeriodSeconds", d.terminationGracePeriodSeconds, {
      min: 1,
      max: 3600,
    }),
    spreadTopologyKey: r.string(
      "spreadTopologyKey",
      d.spreadTopologyKey,
      /^[a-z0-9./-]+$/,
      "a node label key",
    ),
    spreadWhenUnsatisfiable: r.oneOf("spreadWhenUnsatisfiable", d.spreadWhenUnsatisfiable, [
      "ScheduleAnyway",
      "DoNotSchedule",
    ]),
    zoneSpread: r.bool("zoneSpread", d.zoneSpread),
  };
  res.rejectUnknown();
  r.rejectUnknown();
  if (isVersion(w.version) && compareVersions(w.version, OLDEST_SECURE) < 0) {
    r.issues.add(
      `${r.key}.version`,
      `is "${w.version}"; must be ${OLDEST_SECURE} or later (1.25.1 and 1.25.2 fix CVE-2025-12819 and ` +
        `CVE-2026-6664..6667)`,
    );
  }
  if (w.terminationGracePeriodSeconds < w.preStopDelaySeconds + 10) {
    r.issues.add(
      `${r.key}.terminationGracePeriodSeconds`,
      `is ${w.terminationGracePeriodSeconds}; must be at least ${r.key}.preStopDelaySeconds ` +
        `(${w.preStopDelaySeconds}) + 10, or in-flight transactions are killed`,
    );
  }
  if (w.zoneSpread && w.spreadTopologyKey === ZONE_TOPOLOGY_KEY) {
    r.issues.add(
      `${r.key}.zoneSpread`,
      `is true while ${r.key}.spreadTopologyKey is "${ZONE_TOPOLOGY_KEY}": the replicas already spread ` +
        `over zones; set one of them`,
    );
  }
  compareQuantities(r, res.key, w.resources.cpuRequest, w.resources.cpuLimit, "cpu", cpuMillis);
  compareQuantities(r, res.key, w.resources.memoryRequest, w.resources.memoryLimit, "memory", memoryBytes);
  return w;
}

export function readExporter(r: ConfigReader): ExporterSettings {
  const d = EXPORTER_DEFAULTS;
  const e: ExporterSettings = {
    image: r.string("image", d.image, IMAGE_REF, "an image reference with a tag (the digest goes in digest)"),
    ...optionalDigest(r),
    port: r.int("port", d.port, { min: 1024, max: 65535 }),
    statsUser: r.string("statsUser", d.statsUser, PG_IDENTIFIER, "a lower-case PostgreSQL identifier"),
  };
  r.rejectUnknown();
  if (!/:/.test(e.image.split("/").pop() ?? "")) {
    r.issues.add(`${r.key}.image`, `is "${e.image}"; must be pinned to a tag`);
  }
  return e;
}

export function readNetwork(r: ConfigReader): NetworkSettings {
  const d = NETWORK_DEFAULTS;
  const n: NetworkSettings = {
    backendPodSelector: r.labels("backendPodSelector", d.backendPodSelector),
    prometheusNamespaceSelector: r.labels("prometheusNamespaceSelector", d.prometheusNamespaceSelector),
    prometheusPodSelector: r.labels("prometheusPodSelector", d.prometheusPodSelector),
    dnsNamespaceSelector: r.labels("dnsNamespaceSelector", d.dnsNamespaceSelector),
    dnsPodSelector: r.labels("dnsPodSelector", d.dnsPodSelector),
    ...(r.has("databasePodSelector") ? { databasePodSelector: r.labels("databasePodSelector", {}) } : {}),
    ...(r.has("databaseCidrs")
      ? { databaseCidrs: r.stringList("databaseCidrs", IPV4_CIDR, "IPv4 CIDRs such as 10.0.0.0/16") }
      : {}),
  };
  r.rejectUnknown();
  return n;
}

/** The pool budget of a stack's settings: its replicas, surge pod, processes, server cap and PostgreSQL. */
export function settingsPoolBudget(s: Pick<PoolerSettings, "workload" | "pool" | "database">): PoolBudget {
  return poolBudget({
    replicas: s.workload.replicas,
    surge: ROLLING_SURGE,
    processesPerPod: s.workload.processesPerPod,
    serverCapPerProcess: s.pool.maxDbConnections,
    postgresMaxConnections: s.database.maxConnections,
    postgresReservedConnections: s.database.reservedConnections,
  });
}

/** Above this many steady-state server connections per PostgreSQL core, a stack gets a warning. */
export const SERVER_CONNECTIONS_PER_CORE_WARNING = 10;

/**
 * The sizing rule of docs/tuning.md as a warning: with CPU-bound transactions, server connections beyond a
 * few per PostgreSQL core add contention, not throughput (measured here: 2.5 to 5 per core did best, 25 per
 * core lost). Steady state only: the surge pod replaces one that is leaving. Undefined when there is
 * nothing to say or `database.cpuCores` is unset.
 */
export function poolSizingWarning(
  s: Pick<PoolerSettings, "workload" | "pool" | "database">,
  keys: { pool: string; database: string },
): string | undefined {
  const cores = s.database.cpuCores;
  if (cores === undefined) return undefined;
  const total = s.workload.replicas * s.workload.processesPerPod * s.pool.maxDbConnections;
  if (total <= SERVER_CONNECTIONS_PER_CORE_WARNING * cores) return undefined;
  return (
    `${keys.pool}.maxDbConnections: ${s.workload.replicas} replicas x ${s.workload.processesPerPod} ` +
    `process(es) x ${s.pool.maxDbConnections} = ${total} server connections in steady state for ` +
    `${cores} PostgreSQL cores (${keys.database}.cpuCores), ${(total / cores).toFixed(1)} per core; above ` +
    `${SERVER_CONNECTIONS_PER_CORE_WARNING} per core they add contention, not throughput, on CPU-bound work ` +
    `(docs/tuning.md)`
  );
}

/** An optional `digest` field, validated in form. */
function optionalDigest(r: ConfigReader): { digest?: string } {
  if (!r.has("digest")) return {};
  return {
    digest: r.string("digest", undefined, IMAGE_DIGEST, "an image digest, sha256: and 64 hex digits"),
  };
}

/** Checks that cover several sections: the budget, port clashes, the database's egress. */
export function checkPoolerSettings(
  issues: IssueList,
  keys: { workload: string; pool: string; database: string; exporter: string; network: string },
  s: Pick<PoolerSettings, "workload" | "pool" | "database" | "exporter" | "network">,
): void {
  if (databasePeer(s.database.host, "", s.network.databaseCidrs) === undefined) {
    issues.add(
      `${keys.network}.databaseCidrs`,
      `is required: ${keys.database}.host "${s.database.host}" is neither an in-cluster Service name nor an ` +
        `IP address, and a NetworkPolicy cannot match a DNS name; list the database's addresses (CIDRs) ` +
        `so that the pooler may reach it and nothing else`,
    );
  }
  const budget = settingsPoolBudget(s);
  if (!budget.fits) {
    issues.add(
      `${keys.pool}.maxDbConnections`,
      `is ${s.pool.maxDbConnections}; the pool budget does not fit PostgreSQL: ${budget.arithmetic}. ` +
        `Lower ${keys.pool}.maxDbConnections, ${keys.workload}.replicas or ${keys.workload}.processesPerPod, ` +
        `or raise ${keys.database}.maxConnections`,
    );
  }
  // One exporter per process, on consecutive ports from exporter.port.
  const lastExporterPort = s.exporter.port + s.workload.processesPerPod - 1;
  if (s.workload.port >= s.exporter.port && s.workload.port <= lastExporterPort) {
    issues.add(
      `${keys.exporter}.port`,
      `is ${s.exporter.port}; the exporters of ${s.workload.processesPerPod} process(es) use ports ` +
        `${s.exporter.port}-${lastExporterPort}, which must not include ${keys.workload}.port (${s.workload.port})`,
    );
  } else if (lastExporterPort > 65535) {
    issues.add(
      `${keys.exporter}.port`,
      `is ${s.exporter.port}; the exporters of ${s.workload.processesPerPod} processes need ports up to ` +
        `${lastExporterPort}, above 65535`,
    );
  }
}

function cpuMillis(q: string): number {
  return q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000;
}

function memoryBytes(q: string): number {
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[q.slice(-2)] ?? 1;
  return Number(q.slice(0, -2)) * unit;
}

function compareQuantities(
  r: ConfigReader,
  key: string,
  request: string,
  limit: string,
  what: string,
  toNumber: (q: string) => number,
): void {
  const req = toNumber(request);
  const lim = toNumber(limit);
  if (Number.isFinite(req) && Number.isFinite(lim) && req > lim) {
    r.issues.add(`${key}.${what}Request`, `is ${request}; must not exceed ${key}.${what}Limit (${limit})`);
  }
}

export { DNS_LABEL };
