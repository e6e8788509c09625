/**
 * What a stack sets for the pooler (config keys `pgbouncer`, `pool`, `database`, `exporter`, `network`; TLS in
 * ./tls-settings.ts): each setting declared once, see components/common/schema.ts. Checks that span
 * sections are in ./checks.ts, the pool budget in ./budget.ts.
 */
import {
  CPU_QUANTITY,
  DNS_NAME,
  IPV4_CIDR,
  MEMORY_QUANTITY,
  PG_IDENTIFIER,
  type Checks,
  type Infer,
  bool,
  defaultsOf,
  int,
  labels,
  oneOf,
  section,
  string,
  stringList,
} from "../common";
import { PGBOUNCER_RELEASE } from "./release";
import { ZONE_TOPOLOGY_KEY } from "./spread";
import { TLS } from "./tls-settings";
import { OLDEST_SECURE, compareVersions, isVersion } from "./versions";

/** Where these settings are written in plaintext (a value from a Pulumi secret is refused there). */
const INI = "pgbouncer.ini, in the pooler's ConfigMap";
const POD_SPEC = "the pooler's StatefulSet (its pod spec)";

const SECONDS_DAY = [0, 86400] as const;
const IMAGE_REPO = /^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;
const IMAGE_REF = /^[a-z0-9]+([._/:-][a-zA-Z0-9]+)*$/;
/** An image digest as registries print it. */
export const IMAGE_DIGEST = /^sha256:[a-f0-9]{64}$/;
const digest = () => string(IMAGE_DIGEST, "an image digest, sha256: and 64 hex digits").optional();

/** Pool sizes and timeouts; every size is per PgBouncer process. */
export const POOL = section(
  {
    /** `pool_mode`. @default transaction: a server connection is held only for a transaction (OLTP). */
    mode: oneOf(["transaction", "session", "statement"]).default("transaction"),
    /** `default_pool_size`: server connections per (database, user) pair. @default 50 */
    defaultPoolSize: int(1, 10000).default(50),
    /** `min_pool_size`: kept open while the pool has a client; does not pre-warm an idle pool. @default 10 */
    minPoolSize: int(0, 10000).default(10),
    /** `reserve_pool_size`: extra connections after `reservePoolTimeoutSeconds` of waiting. @default 0 */
    reservePoolSize: int(0, 10000).default(0),
    /** `reserve_pool_timeout`. @default 5 */
    reservePoolTimeoutSeconds: int(...SECONDS_DAY).default(5),
    /**
     * `max_db_connections`: the per-process server cap, the one number the pool budget, the alert thresholds
     * and the dashboard derive from. @default 50
     */
    maxDbConnections: int(1, 10000).default(50),
    /** `max_client_conn`: client connections one process accepts. @default 500 */
    maxClientConn: int(1, 100000).default(500),
    /** `query_wait_timeout`: a client waiting longer for a server is disconnected. @default 120 */
    queryWaitTimeoutSeconds: int(...SECONDS_DAY).default(120),
    /** `server_idle_timeout`: idle server connections above min_pool_size close after this. @default 600 */
    serverIdleTimeoutSeconds: int(...SECONDS_DAY).default(600),
    /** `server_lifetime`: server connections are recycled after this. @default 3600 */
    serverLifetimeSeconds: int(...SECONDS_DAY).default(3600),
    /**
     * `server_login_retry`: after a failed server login (PostgreSQL restarting), PgBouncer refuses clients
     * this long before it tries again. @default 1 (PgBouncer's own 15 kept clients out for 15 s after a
     * 0.3 s PostgreSQL restart here; 1 recovered in 1.1 s, see docs/tuning.md)
     */
    serverLoginRetrySeconds: int(1, 3600).default(1),
    /**
     * `max_prepared_statements`: protocol-level prepared statements in transaction mode (PgBouncer 1.21+);
     * 0 turns the feature off. @default 200
     */
    maxPreparedStatements: int(0, 100000).default(200),
  },
  {
    check: (p, c) => {
      if (p.minPoolSize > p.defaultPoolSize) {
        c.add(
          "minPoolSize",
          `is ${p.minPoolSize}; must not exceed ${c.key("defaultPoolSize")} (${p.defaultPoolSize})`,
        );
      }
      if (p.defaultPoolSize > p.maxDbConnections) {
        c.add(
          "defaultPoolSize",
          `is ${p.defaultPoolSize}; must not exceed ${c.key("maxDbConnections")} (${p.maxDbConnections}), ` +
            `the per-process server cap`,
        );
      }
      if (p.maxClientConn < p.maxDbConnections) {
        c.add(
          "maxClientConn",
          `is ${p.maxClientConn}; must be at least ${c.key("maxDbConnections")} (${p.maxDbConnections}), ` +
            `or the pool can never fill`,
        );
      }
    },
  },
).landsIn(INI);
/** How PgBouncer hands server connections to clients. */
export type PoolMode = PoolSettings["mode"];
export type PoolSettings = Infer<typeof POOL.shape>;
export const POOL_DEFAULTS = defaultsOf(POOL);

/** The PostgreSQL server PgBouncer pools for. */
export const DATABASE = section(
  {
    /** Host name of PostgreSQL, usually its Service. @default postgres */
    host: string(DNS_NAME, "a DNS name").default("postgres"),
    /** @default 5432 */
    port: int(1, 65535).default(5432),
    /** Database name, served under the same name by PgBouncer. @default clipper */
    name: string(PG_IDENTIFIER, "a lower-case PostgreSQL identifier").default("clipper"),
    /**
     * PostgreSQL's `max_connections`, as the server is configured. Required: the pool budget is checked
     * against it, and only the stack knows its database.
     */
    maxConnections: int(1, 262143).notWritten(),
    /** Connections kept for others (superuser reserve, migrations, backups). @default 3 */
    reservedConnections: int(0, 262143).default(3).notWritten(),
    /**
     * PostgreSQL's CPU cores, which the program cannot see. When set, a pool far above what those cores can
     * run at once gets a warning (never an error), see `poolSizingWarning`. @default unset: no warning
     */
    cpuCores: int(1, 1024).optional().notWritten(),
  },
  {
    check: (db, c) => {
      if (db.reservedConnections >= db.maxConnections) {
        c.add(
          "reservedConnections",
          `is ${db.reservedConnections}; must be below ${c.key("maxConnections")} (${db.maxConnections})`,
        );
      }
    },
  },
).landsIn(INI);
export type DatabaseSettings = Infer<typeof DATABASE.shape>;

export const RESOURCES = section(
  {
    /** @default 100m */
    cpuRequest: string(CPU_QUANTITY, "a CPU quantity such as 100m").default("100m"),
    /** @default 500m */
    cpuLimit: string(CPU_QUANTITY, "a CPU quantity such as 500m").default("500m"),
    /** @default 64Mi */
    memoryRequest: string(MEMORY_QUANTITY, "a memory quantity such as 64Mi").default("64Mi"),
    /** @default 256Mi */
    memoryLimit: string(MEMORY_QUANTITY, "a memory quantity such as 256Mi").default("256Mi"),
  },
  {
    check: (r, c) => {
      compareQuantities(c, "cpu", r.cpuRequest, r.cpuLimit, cpuMillis);
      compareQuantities(c, "memory", r.memoryRequest, r.memoryLimit, memoryBytes);
    },
  },
);
export type ResourceSettings = Infer<typeof RESOURCES.shape>;

/** The PgBouncer StatefulSet. */
export const WORKLOAD = section(
  {
    /** Image repository; the tag is `version`. @default ghcr.io/cloudnative-pg/pgbouncer */
    image: string(IMAGE_REPO, "an image repository without a tag").default(
      "ghcr.io/cloudnative-pg/pgbouncer",
    ),
    /**
     * The image's digest (`sha256:…`), pinned next to the tag: `image:version@digest`. The policy pack warns
     * when prod runs without one. @default unset: the tag alone
     */
    digest: digest(),
    /**
     * PgBouncer release the image runs; must carry the 1.25.2 security fixes.
     * @default the release in `components/pgbouncer/pgbouncer-release.json` (1.25.2), which the tests also run
     */
    version: string(/^\d+\.\d+\.\d+$/, "a PgBouncer release such as 1.25.2").default(
      PGBOUNCER_RELEASE.version,
    ),
    /** @default 2 */
    replicas: int(1, 50).default(2),
    /** PgBouncer processes per pod (`so_reuseport`). @default 1 */
    processesPerPod: int(1, 16).default(1),
    /** Client port; the Service exposes it too. @default 6432 */
    port: int(1024, 65535).default(6432),
    resources: RESOURCES,
    /**
     * Seconds the pod keeps serving after it is marked terminating, so that endpoints drop it before
     * PgBouncer stops accepting. @default 10
     */
    preStopDelaySeconds: int(0, 300).default(10),
    /**
     * After the preStop delay, how long a draining pod keeps serving its connected clients (PgBouncer's
     * `SHUTDOWN WAIT_FOR_CLIENTS`, cancel requests still forwarded to it) before it pauses them: running
     * transactions then finish, and the clients left see their connection closed between transactions.
     * @default 30
     */
    drainSeconds: int(0, 3600).default(30),
    /**
     * Hard deadline for the pod to stop: the preStop delay, the drain, then what in-flight transactions need
     * to finish. @default 120
     */
    terminationGracePeriodSeconds: int(1, 3600).default(120),
    /**
     * How often each PgBouncer container compares its mounted config, auth file and TLS files with what it
     * runs, and reloads a validated change (the kubelet updates the mounts in place, after its sync period).
     * @default 10
     */
    reloadCheckSeconds: int(1, 300).default(10),
    /**
     * How long a change waits on pods other than the canary (`pgbouncer-0`, which applies it at once); they
     * then apply it only while the canary is ready. A change that breaks the canary's server logins or that
     * PgBouncer refuses makes the canary unready, and the others keep what they run.
     * @default 60
     */
    canaryHoldSeconds: int(0, 3600).default(60),
    /**
     * How long a process stays unready after a server login that a restarting PostgreSQL does not explain
     * (a refused password, a certificate or TLS error, a host that does not resolve).
     * @default 10
     */
    serverLoginFailureSeconds: int(1, 600).default(10),
    /** Node label the replicas are spread over. @default kubernetes.io/hostname */
    spreadTopologyKey: string(/^[a-z0-9./-]+$/, "a node label key").default("kubernetes.io/hostname"),
    /**
     * What the scheduler does when no node keeps the spread over `spreadTopologyKey` within a skew of 1.
     * `DoNotSchedule` keeps the pod Pending rather than put it next to another replica while some other
     * usable node exists, even one without room for it (the policy pack then requires
     * `nodeTaintsPolicy: Honor`, which is always rendered).
     * @default ScheduleAnyway: two replicas on one node beat one replica during maintenance
     * (docs/runbook.md, "Maintenance")
     */
    spreadWhenUnsatisfiable: oneOf(["ScheduleAnyway", "DoNotSchedule"]).default("ScheduleAnyway"),
    /**
     * Also spread, softly (`ScheduleAnyway`), over `topology.kubernetes.io/zone`. Only for clusters whose
     * nodes all carry that label: a node without it gets no spread score at all, so on a cluster without
     * zone labels the soft hostname spread would be lost too. @default false
     */
    zoneSpread: bool().default(false),
  },
  {
    check: (w, c) => {
      if (isVersion(w.version) && compareVersions(w.version, OLDEST_SECURE) < 0) {
        c.add(
          "version",
          `is "${w.version}"; must be ${OLDEST_SECURE} or later (1.25.1 and 1.25.2 fix CVE-2025-12819 and ` +
            `CVE-2026-6664..6667)`,
        );
      }
      if (w.terminationGracePeriodSeconds < w.preStopDelaySeconds + w.drainSeconds + 10) {
        c.add(
          "terminationGracePeriodSeconds",
          `is ${w.terminationGracePeriodSeconds}; must be at least ${c.key("preStopDelaySeconds")} ` +
            `(${w.preStopDelaySeconds}) + ${c.key("drainSeconds")} (${w.drainSeconds}) + 10, or in-flight ` +
            `transactions are killed`,
        );
      }
      if (w.zoneSpread && w.spreadTopologyKey === ZONE_TOPOLOGY_KEY) {
        c.add(
          "zoneSpread",
          `is true while ${c.key("spreadTopologyKey")} is "${ZONE_TOPOLOGY_KEY}": the replicas already ` +
            `spread over zones; set one of them`,
        );
      }
    },
  },
).landsIn(POD_SPEC);
export type WorkloadSettings = Infer<typeof WORKLOAD.shape>;
export const WORKLOAD_DEFAULTS = defaultsOf(WORKLOAD);

/** The prometheus-community/pgbouncer_exporter sidecar. */
export const EXPORTER = section(
  {
    /** @default prometheuscommunity/pgbouncer-exporter:v0.12.1 */
    image: string(IMAGE_REF, "an image reference with a tag (the digest goes in digest)").default(
      "prometheuscommunity/pgbouncer-exporter:v0.12.1",
    ),
    /** The image's digest (`sha256:…`), pinned next to the tag. @default unset: the tag alone */
    digest: digest(),
    /** @default 9127 */
    port: int(1024, 65535).default(9127),
    /** PgBouncer user the exporter logs in as; listed in `stats_users`. @default pgbouncer_exporter */
    statsUser: string(PG_IDENTIFIER, "a lower-case PostgreSQL identifier").default("pgbouncer_exporter"),
  },
  {
    check: (e, c) => {
      if (!/:/.test(e.image.split("/").pop() ?? ""))
        c.add("image", `is "${e.image}"; must be pinned to a tag`);
    },
  },
).landsIn(POD_SPEC);
export type ExporterSettings = Infer<typeof EXPORTER.shape>;

/** Who may reach the pooler, and what it may reach (NetworkPolicy; the egress in ./egress.ts). */
export const NETWORK = section({
  /** Labels of the backend pods, in the pooler's namespace, that may connect to the client port. */
  backendPodSelector: labels().default({ "app.kubernetes.io/name": "clipper-backend" }),
  /** Labels of the namespace Prometheus runs in. @default kubernetes.io/metadata.name: monitoring */
  prometheusNamespaceSelector: labels().default({ "kubernetes.io/metadata.name": "monitoring" }),
  /** Labels of the Prometheus pods that may scrape the metrics port. */
  prometheusPodSelector: labels().default({ "app.kubernetes.io/name": "prometheus" }),
  /** Namespace labels of the cluster DNS. @default kubernetes.io/metadata.name: kube-system */
  dnsNamespaceSelector: labels().default({ "kubernetes.io/metadata.name": "kube-system" }),
  /** Pod labels of the cluster DNS. @default k8s-app: kube-dns */
  dnsPodSelector: labels().default({ "k8s-app": "kube-dns" }),
  /** Pod labels of PostgreSQL, when it runs in the cluster. @default unset: any pod of its namespace */
  databasePodSelector: labels().optional(),
  /** PostgreSQL's addresses, when its host is not an in-cluster Service or an IP. @default unset */
  databaseCidrs: stringList(IPV4_CIDR, "IPv4 CIDRs such as 10.0.0.0/16").optional(),
}).landsIn("the pooler's NetworkPolicy");
export type NetworkSettings = Infer<typeof NETWORK.shape>;

/** What one stack sets for the pooler: the PgBouncer component's settings, by config key. */
export const POOLER_SETTINGS = {
  /** The PgBouncer StatefulSet (config key `pgbouncer`). */
  workload: WORKLOAD.fromKey("pgbouncer"),
  pool: POOL,
  database: DATABASE,
  exporter: EXPORTER,
  network: NETWORK,
  /** TLS on both legs (config key `tls`). */
  tls: TLS,
};
export type PoolerSettings = Infer<typeof POOLER_SETTINGS>;

function cpuMillis(q: string): number {
  return q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000;
}

function memoryBytes(q: string): number {
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[q.slice(-2)] ?? 1;
  return Number(q.slice(0, -2)) * unit;
}

function compareQuantities(
  c: Checks,
  what: "cpu" | "memory",
  request: string,
  limit: string,
  toNumber: (q: string) => number,
): void {
  const req = toNumber(request);
  const lim = toNumber(limit);
  if (Number.isFinite(req) && Number.isFinite(lim) && req > lim) {
    c.add(`${what}Request`, `is ${request}; must not exceed ${c.key(`${what}Limit`)} (${limit})`);
  }
}
