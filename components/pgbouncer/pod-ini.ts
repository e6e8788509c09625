import type { IniAuthSettings } from "../credentials";
import { fleetPeers } from "./fleet";
import type { IniInput } from "./ini";
import type { PoolerSettings } from "./settings";
import { type IniTls, TLS_FILE_NAMES } from "./tls-ini";

/** Where the pod keeps its files. */
export const POD_PATHS = {
  /** The ConfigMap with the shared ini, as the kubelet mounts (and updates) it. */
  configDir: "/etc/pgbouncer/config",
  /** The Secret with the auth file, as the kubelet mounts (and updates) it. */
  authDir: "/etc/pgbouncer/auth",
  /** The TLS files (the certificate's Secret and the server CA), one projected volume. */
  tlsDir: "/etc/pgbouncer/tls",
  /**
   * Each PgBouncer container's own folder (an emptyDir, at the same path in every container): its script's
   * validated snapshots of the mounts, `current` linking to the one PgBouncer runs.
   */
  appliedDir: "/var/run/pgbouncer/applied",
  /** One unix socket folder per process below it, `<runDir>/<process>`: its exporter's way in, and its peers'. */
  runDir: "/var/run/pgbouncer",
} as const;

/** The validated generation's folder: every file path of the shared ini points into it. */
export const CURRENT_DIR = `${POD_PATHS.appliedDir}/current`;

/** The shared ini's key in the ConfigMap, and the auth file's in the Secret. */
export const INI_FILE = "pgbouncer.ini";
export const AUTH_FILE = "userlist.txt";

/** What the ini of a pod depends on. */
export type PodIniSettings = Pick<PoolerSettings, "workload" | "pool" | "database" | "exporter" | "tls">;

/** The unix socket directory of process `index` (1-based) of a pod. */
export function socketDir(index: number): string {
  return `${POD_PATHS.runDir}/${index}`;
}

/** The ini's TLS input of a pod: the files of the validated generation. */
export function podIniTls(tls: PoolerSettings["tls"]): IniTls {
  return {
    client: {
      sslmode: tls.clientSslMode,
      certFile: `${CURRENT_DIR}/${TLS_FILE_NAMES.cert}`,
      keyFile: `${CURRENT_DIR}/${TLS_FILE_NAMES.key}`,
      protocols: tls.protocols,
    },
    server: {
      sslmode: tls.serverSslMode,
      ...(tls.serverCa ? { caFile: `${CURRENT_DIR}/${TLS_FILE_NAMES.serverCa}` } : {}),
      protocols: tls.protocols,
    },
  };
}

/**
 * The ini every PgBouncer process of every pod shares (the ConfigMap's `pgbouncer.ini`): listens on every
 * interface of the pod, no pidfile, logs to stderr, and lists every process of the fleet in `[peers]`, by its
 * pod's DNS name. It names no unix socket folder and no `peer_id`: each process's script appends its own
 * (./pgbouncer-pod.sh), after `[pgbouncer]`, which this file ends with. Its file paths point into the
 * generation the script validated (`CURRENT_DIR`). The local harness renders from it too
 * (`tools/harness/ini.ts`) and rewrites only addresses, ports and paths.
 */
export function podIniInput(s: PodIniSettings, auth: IniAuthSettings, namespace: string): IniInput {
  return {
    version: s.workload.version,
    listen: { addr: "0.0.0.0", port: s.workload.port },
    database: { name: s.database.name, host: s.database.host, port: s.database.port },
    pool: s.pool,
    auth: { ...auth, file: `${CURRENT_DIR}/${AUTH_FILE}` },
    statsUsers: [s.exporter.statsUser],
    adminUsers: [],
    paths: { pidfile: "", logfile: "" },
    process: { peers: fleetPeers(s.workload, namespace) },
    tls: podIniTls(s.tls),
  };
}
