/**
 * The checks of the pooler's settings that span sections: the database's egress, the pool budget, and the
 * ports of the client and the exporters. Run with the whole stack's settings (stacks/settings.ts).
 */
import type { Checks } from "../common";
import type { CredentialSettings } from "../credentials";
import { settingsPoolBudget } from "./budget";
import { databasePeer } from "./egress";
import type { PoolerSettings } from "./settings";

/** Checks across the pooler's sections; `c` is the stack's, so paths start with the section's config key. */
export function checkPoolerSettings(
  s: Pick<PoolerSettings, "workload" | "pool" | "database" | "exporter" | "network"> & {
    readonly credentials: CredentialSettings;
  },
  c: Checks,
): void {
  if (databasePeer(s.database.host, "", s.network.databaseCidrs) === undefined) {
    c.add(
      "network.databaseCidrs",
      `is required: ${c.key("database.host")} "${s.database.host}" is neither an in-cluster Service name nor ` +
        `an IP address, and a NetworkPolicy cannot match a DNS name; list the database's addresses (CIDRs) ` +
        `so that the pooler may reach it and nothing else`,
    );
  }
  const budget = settingsPoolBudget(s);
  if (!budget.fits) {
    const cap = c.key("pool.maxDbConnections");
    c.add(
      "pool.maxDbConnections",
      `is ${s.pool.maxDbConnections}; the pool budget does not fit PostgreSQL: ${budget.arithmetic}. ` +
        `Lower ${cap}, ${c.key("pgbouncer.replicas")} or ${c.key("pgbouncer.processesPerPod")}, ` +
        `or raise ${c.key("database.maxConnections")}`,
    );
  }
  // One exporter per process, on consecutive ports from exporter.port.
  const lastExporterPort = s.exporter.port + s.workload.processesPerPod - 1;
  if (s.workload.port >= s.exporter.port && s.workload.port <= lastExporterPort) {
    c.add(
      "exporter.port",
      `is ${s.exporter.port}; the exporters of ${s.workload.processesPerPod} process(es) use ports ` +
        `${s.exporter.port}-${lastExporterPort}, which must not include ${c.key("pgbouncer.port")} ` +
        `(${s.workload.port})`,
    );
  } else if (lastExporterPort > 65535) {
    c.add(
      "exporter.port",
      `is ${s.exporter.port}; the exporters of ${s.workload.processesPerPod} processes need ports up to ` +
        `${lastExporterPort}, above 65535`,
    );
  }
}
