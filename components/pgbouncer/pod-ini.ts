import type { IniAuthSettings } from "../credentials";
import type { IniInput, IniProcess } from "./ini";
import type { PoolerSettings } from "./settings";
import { podIniTls } from "./tls-ini";

/** Where the pod mounts its files. */
export const POD_PATHS = {
  configDir: "/etc/pgbouncer",
  authDir: "/etc/pgbouncer/auth",
  authFile: "/etc/pgbouncer/auth/userlist.txt",
  /** One unix socket directory per process below it: its exporter's way in, and its peers'. */
  runDir: "/var/run/pgbouncer",
} as const;

/** What the ini of a pod depends on. */
export type PodIniSettings = Pick<PoolerSettings, "workload" | "pool" | "database" | "exporter" | "tls">;

/** The ini file of process `index` (1-based) in the ConfigMap; a single process keeps `pgbouncer.ini`. */
export function iniFileName(index: number, processes: number): string {
  return processes === 1 ? "pgbouncer.ini" : `pgbouncer-${index}.ini`;
}

/** The unix socket directory of process `index` of a multi-process pod. */
export function socketDir(index: number): string {
  return `${POD_PATHS.runDir}/${index}`;
}

/**
 * The ini input of every PgBouncer process of the pod. Each listens on every interface of the pod; no
 * pidfile; logs to stderr. Each process has its own unix socket directory, through which its exporter
 * reaches exactly this process without TLS (see `socketConnectionString`). Several share the port through
 * `so_reuseport`, and their peers forward cancel requests through those sockets (`peer_id`, `[peers]`). The local harness renders from these too (`tools/harness/ini.ts`) and
 * rewrites only version, paths, address and port.
 */
export function podIniInputs(s: PodIniSettings, auth: IniAuthSettings): IniInput[] {
  const k = s.workload.processesPerPod;
  const indexes = Array.from({ length: k }, (_, i) => i + 1);
  return indexes.map((i) => {
    const process: IniProcess | undefined =
      k === 1
        ? undefined
        : {
            soReuseport: true,
            peerId: i,
            // A peer's port defaults to 6432, not to listen_port: name it, or a pod on another port loses
            // every forwarded cancel (its peers' sockets are named after listen_port).
            peers: indexes.map((j) => ({ id: j, host: socketDir(j), port: s.workload.port })),
          };
    return {
      version: s.workload.version,
      listen: { addr: "0.0.0.0", port: s.workload.port },
      database: { name: s.database.name, host: s.database.host, port: s.database.port },
      pool: s.pool,
      auth: { ...auth, file: POD_PATHS.authFile },
      statsUsers: [s.exporter.statsUser],
      adminUsers: [],
      paths: { unixSocketDir: socketDir(i), pidfile: "", logfile: "" },
      ...(process ? { process } : {}),
      tls: podIniTls(s.tls),
    };
  });
}

/** The ini input of the pod's first (or only) process. */
export function podIniInput(s: PodIniSettings, auth: IniAuthSettings): IniInput {
  return podIniInputs(s, auth)[0];
}
