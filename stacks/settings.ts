import { ConfigReader, DNS_LABEL, IssueList, show } from "../components/common";
import { PROJECT_DIR, key, rawStackConfig, stackFileConfig } from "./stack-file";
import { type BackendRouteSettings, readBackendRoute } from "../components/backend-route";
import {
  type MonitoringSettings,
  checkMonitoringAgainstPool,
  readMonitoring,
} from "../components/monitoring";
import { type CredentialSettings, readCredentials } from "../components/credentials";
import {
  type PoolerSettings,
  checkPoolerSettings,
  readDatabase,
  readExporter,
  readNetwork,
  readPool,
  readTls,
  readWorkload,
} from "../components/pgbouncer";

/** Everything one environment deploys, typed; staging and prod differ only in their stack files. */
export interface StackSettings extends PoolerSettings {
  /** Kubernetes namespace of the pooler (it must exist). @default clipper */
  readonly namespace: string;
  readonly credentials: CredentialSettings;
  /** The backend switch (config key `backend`): where the backend's DB_HOST/DB_PORT point. */
  readonly backend: BackendRouteSettings;
  /** Scrape config, alert rules and the Grafana dashboard (config key `monitoring`). */
  readonly monitoring: MonitoringSettings;
}

/** Config keys (below `clipper-pgbouncer:`) and the reader of each. */
const SECTIONS = [
  "namespace",
  "pgbouncer",
  "pool",
  "database",
  "exporter",
  "network",
  "tls",
  "credentials",
  "backend",
  "monitoring",
] as const;

/**
 * Validates a whole stack's settings, given as the parsed value of each config key below
 * `clipper-pgbouncer:`. Throws one `ConfigError` listing every problem; returns fully defaulted settings.
 */
export function parseSettings(
  raw: Readonly<Record<string, unknown>>,
  issues: IssueList = new IssueList(),
): StackSettings {
  for (const k of Object.keys(raw)) {
    if (!(SECTIONS as readonly string[]).includes(k)) {
      issues.add(key(k), `is not a known setting (known: ${SECTIONS.join(", ")})`);
    }
  }
  issues.noteRead(key("namespace"));
  let namespace = "clipper";
  if (raw.namespace !== undefined) {
    if (typeof raw.namespace !== "string" || !DNS_LABEL.test(raw.namespace)) {
      issues.add(
        key("namespace"),
        `is ${show(raw.namespace)}; must be a Kubernetes namespace name (RFC 1123 label)`,
      );
    } else {
      namespace = raw.namespace;
    }
  }
  const reader = (section: string) => new ConfigReader(key(section), raw[section], issues);
  const settings: StackSettings = {
    namespace,
    workload: readWorkload(reader("pgbouncer")),
    pool: readPool(reader("pool")),
    database: readDatabase(reader("database")),
    exporter: readExporter(reader("exporter")),
    network: readNetwork(reader("network")),
    tls: readTls(reader("tls")),
    credentials: readCredentials(reader("credentials")),
    backend: readBackendRoute(reader("backend")),
    monitoring: readMonitoring(reader("monitoring")),
  };
  checkPoolerSettings(
    issues,
    {
      workload: key("pgbouncer"),
      pool: key("pool"),
      database: key("database"),
      exporter: key("exporter"),
      network: key("network"),
    },
    settings,
  );
  checkMonitoringAgainstPool(issues, { monitoring: key("monitoring"), pool: key("pool") }, settings);
  issues.throwIfAny();
  return settings;
}

/**
 * The validated settings of `Pulumi.<stack>.yaml`, as the program reads them (throws the program's own
 * `ConfigError` for a refused stack file). What tests, tools and the e2e load a stack with.
 */
export function loadStackSettings(stack: string, dir: string = PROJECT_DIR): StackSettings {
  return parseSettings(rawStackConfig(stackFileConfig(stack, dir)));
}
