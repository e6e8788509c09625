import {
  DNS_LABEL,
  type Infer,
  IssueList,
  type Parsed,
  readStack,
  section,
  string,
} from "../components/common";
import { BACKEND_ROUTE } from "../components/backend-route";
import { CREDENTIALS } from "../components/credentials";
import { MONITORING, checkMonitoringAgainstPool } from "../components/monitoring";
import { POOLER_SETTINGS, checkPoolerSettings } from "../components/pgbouncer";
import { PROVIDERS, checkProvidersAgainstMonitoring } from "../components/providers";
import { CONFIG_NAMESPACE, PROJECT_DIR, rawStackConfig, stackFileConfig } from "./stack-file";

/**
 * Every setting of a stack: the config keys below `clipper-pgbouncer:`, in the order docs/settings.md lists
 * them, each a section declared in its concern (components/<concern>/settings.ts). A new section is one
 * property here.
 */
export const STACK_SETTINGS = section(
  {
    /** Kubernetes namespace of the pooler (it must exist). @default clipper */
    namespace: string(DNS_LABEL, "a Kubernetes namespace name (RFC 1123 label)")
      .default("clipper")
      .landsIn("every object's metadata and the stack outputs"),
    /** Where the stack deploys: its cluster, Vault and Grafana (config key `providers`). */
    providers: PROVIDERS,
    ...POOLER_SETTINGS,
    credentials: CREDENTIALS,
    /** The backend switch (config key `backend`): where the backend's DB_HOST/DB_PORT point. */
    backend: BACKEND_ROUTE,
    /** Scrape config, alert rules and the Grafana dashboard (config key `monitoring`). */
    monitoring: MONITORING,
  },
  {
    // Checks that span sections: the budget, the ports, the database's egress, the alert threshold, Grafana.
    check: (s, c) => {
      checkPoolerSettings(s, c);
      checkMonitoringAgainstPool(s, c);
      checkProvidersAgainstMonitoring(s, c);
    },
  },
);

/** Everything one environment deploys, typed; staging and prod differ only in their stack files. */
export type StackSettings = Infer<typeof STACK_SETTINGS.shape>;

/**
 * Validates a whole stack's settings, given as the parsed value of each config key below
 * `clipper-pgbouncer:`, and `secretSections`, the keys among them that Pulumi marks secret. Throws one
 * `ConfigError` listing every problem; returns fully defaulted settings, and the settings from secrets that
 * go into resources as secrets.
 */
export function parseStack(
  raw: Readonly<Record<string, unknown>>,
  secretSections: ReadonlySet<string> = new Set(),
  issues: IssueList = new IssueList(),
): Parsed<StackSettings> {
  const parsed = readStack(CONFIG_NAMESPACE, STACK_SETTINGS, raw, issues, secretSections);
  issues.throwIfAny();
  return parsed;
}

/** {@link parseStack} of a stack without secret settings: the settings alone. */
export function parseSettings(
  raw: Readonly<Record<string, unknown>>,
  issues: IssueList = new IssueList(),
): StackSettings {
  return parseStack(raw, new Set(), issues).value;
}

/**
 * The validated settings of `Pulumi.<stack>.yaml`, as the program reads them (throws the program's own
 * `ConfigError` for a refused stack file). What tests, tools and the e2e load a stack with.
 */
export function loadStackSettings(stack: string, dir: string = PROJECT_DIR): StackSettings {
  return parseSettings(rawStackConfig(stackFileConfig(stack, dir)));
}
