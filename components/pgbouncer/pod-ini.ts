import type { IniAuth, IniInput } from "./ini";
import type { DatabaseSettings, ExporterSettings, PoolSettings, WorkloadSettings } from "./settings";

/** Where the pod mounts its files. */
export const POD_PATHS = {
  configDir: "/etc/pgbouncer",
  iniFile: "/etc/pgbouncer/pgbouncer.ini",
  authDir: "/etc/pgbouncer/auth",
  authFile: "/etc/pgbouncer/auth/userlist.txt",
} as const;

export interface PodIniSettings {
  readonly workload: WorkloadSettings;
  readonly pool: PoolSettings;
  readonly database: DatabaseSettings;
  readonly exporter: ExporterSettings;
}

/**
 * The ini input of the pod: listens on every interface of the pod, no unix socket (the root filesystem is
 * read-only and the exporter uses TCP), no pidfile, logs to stderr. A local harness reuses this and rewrites
 * only version, paths, address and port.
 */
export function podIniInput(s: PodIniSettings, auth: Omit<IniAuth, "file">): IniInput {
  return {
    version: s.workload.version,
    listen: { addr: "0.0.0.0", port: s.workload.port },
    database: { name: s.database.name, host: s.database.host, port: s.database.port },
    pool: s.pool,
    auth: { ...auth, file: POD_PATHS.authFile },
    statsUsers: [s.exporter.statsUser],
    adminUsers: [],
    paths: { unixSocketDir: "", pidfile: "", logfile: "" },
  };
}
