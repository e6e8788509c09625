/**
 * What one replica of the local fleet is started from: the files its pod mounts and the environment of each
 * PgBouncer container's script, in local terms. {@link ReplicaSpec} is the interface the render binds to;
 * until the render produces the StatefulSet, {@link specsFromTodaysRender} builds it from today's ini
 * renderer (the harness's `harnessIniInput`) and the product's credentials.
 */
import * as path from "node:path";
import type { IniAuthSettings } from "../../components/credentials";
import { TLS_PATHS, renderIni } from "../../components/pgbouncer";
import type { PodScriptEnv } from "../../components/pgbouncer/pod-script";
import type { StackSettings } from "../../stacks/settings";
import { harnessIniInput } from "../harness/ini";

/** One mounted folder's files: name → content. */
export type MountFiles = Readonly<Record<string, string>>;

/** The volumes a pooler pod mounts and the file the ini is in. */
export const VOLUMES = { config: "config", auth: "auth", tls: "tls" } as const;
export const INI_FILE = "pgbouncer.ini";
export const AUTH_FILE = "userlist.txt";
/** The TLS volume's file names (the pod's projected volume). */
export const TLS_FILES = {
  cert: path.basename(TLS_PATHS.certFile),
  key: path.basename(TLS_PATHS.keyFile),
  serverCa: path.basename(TLS_PATHS.serverCaFile),
} as const;

/** A replica as its pod would run it, with every address and folder local. */
export interface ReplicaSpec {
  /** `pgbouncer-<ordinal>`. */
  readonly podName: string;
  /** Volume name → its files; the fleet lays each out as the kubelet does, in {@link FleetPlaces.mountDir}. */
  readonly mounts: Readonly<Record<string, MountFiles>>;
  /** One container per PgBouncer process: the script's environment (`podScriptEnv`), folders local. */
  readonly processes: readonly PodScriptEnv[];
}

/** Where the fleet puts things; the render fills them into the ini and the environment. */
export interface FleetPlaces {
  /**
   * `<applied>/current`: the same path in every container, as in the pods (each container mounts its own
   * `applied` volume at one path; the fleet bind-mounts each process's own folder there).
   */
  readonly current: string;
  mountDir(ordinal: number, volume: string): string;
  /** Process `process` (1-based) of replica `ordinal`: its unix socket folder, `<socket root>/<process>`. */
  socketDir(ordinal: number, process: number): string;
  /** Replica `ordinal`'s client port on 127.0.0.1 (its pod's address and `listen_port`). */
  port(ordinal: number): number;
}

/** The script's timings, the same in every container. */
export interface ScriptTimings {
  readonly checkSeconds: number;
  readonly canaryHoldSeconds: number;
  readonly failureSeconds: number;
  readonly drainSeconds: number;
}

/** What {@link specsFromTodaysRender} renders from. */
export interface TodaysRenderInput {
  readonly settings: StackSettings;
  /** Replicas and processes per replica (the stack's `pgbouncer.replicas`/`processesPerPod` unless told). */
  readonly replicas: number;
  readonly processes: number;
  /** The auth file and its ini settings, as the program builds them from Vault (`buildCredentials`). */
  readonly authFile: string;
  readonly iniAuth: IniAuthSettings;
  /** The TLS volume's PEM texts: the pooler's certificate and key, PostgreSQL's CA. */
  readonly tls: { readonly cert: string; readonly key: string; readonly serverCa: string };
  readonly postgres: { readonly host: string; readonly port: number };
  /** The canary's DNS name; "" applies every change at once on every replica. */
  readonly canary: string;
  readonly timings: ScriptTimings;
  /**
   * `fleet`: `[peers]` names every process of every replica (the StatefulSet). `pod`: no peers across
   * replicas, as today's Deployment renders (each pod's processes peer over their sockets only).
   * @default fleet
   */
  readonly peers?: "fleet" | "pod";
}

/**
 * THE ADAPTER, to be replaced by the render: today's ini renderer into the shape the StatefulSet's shared
 * ConfigMap will have, for replicas `ordinals`. The shared ini: `[databases]`, `[peers]` (every process of
 * every replica, `peer_id` = ordinal x processes + process, at the replica's 127.0.0.1 port where the pod has
 * its DNS name), then `[pgbouncer]` last, without `unix_socket_dir` (the script adds it, with `peer_id` and
 * `so_reuseport`), its file paths in `<current>/`. Per replica only `listen_port` differs (the pods share
 * 6432 on addresses of their own).
 */
export function specsFromTodaysRender(
  input: TodaysRenderInput,
  places: FleetPlaces,
  ordinals: readonly number[],
): ReplicaSpec[] {
  const { settings, processes, timings } = input;
  const current = places.current;
  const peerLines: string[] = [];
  if ((input.peers ?? "fleet") === "fleet") {
    for (let o = 0; o < input.replicas; o++) {
      for (let p = 1; p <= processes; p++) {
        peerLines.push(`${o * processes + p} = host=127.0.0.1 port=${places.port(o)}`);
      }
    }
  }
  const sharedIni = (ordinal: number): string => {
    const one = { ...settings, workload: { ...settings.workload, processesPerPod: 1 } };
    const text = renderIni(
      harnessIniInput(one, input.iniAuth, {
        tls: {
          certFile: `${current}/${TLS_FILES.cert}`,
          keyFile: `${current}/${TLS_FILES.key}`,
          serverCaFile: `${current}/${TLS_FILES.serverCa}`,
        },
        listen: { addr: "127.0.0.1", port: places.port(ordinal) },
        database: input.postgres,
        paths: { authFile: `${current}/${AUTH_FILE}`, unixSocketDir: "", pidfile: "", logfile: "" },
      }),
    );
    const [head, body] = text.split("\n[pgbouncer]\n");
    if (body === undefined) throw new Error("fleet: the rendered ini has no [pgbouncer] section");
    const own = body.split("\n").filter((l) => !/^(unix_socket_dir|peer_id|so_reuseport) =/.test(l));
    const peers = peerLines.length > 0 ? ["[peers]", ...peerLines, ""] : [];
    return [head.replace(/\n+$/, ""), "", ...peers, "[pgbouncer]", ...own].join("\n");
  };
  return ordinals.map((ordinal) => {
    const podName = `pgbouncer-${ordinal}`;
    const sources = Object.values(VOLUMES).map((v) => places.mountDir(ordinal, v));
    return {
      podName,
      mounts: {
        [VOLUMES.config]: { [INI_FILE]: sharedIni(ordinal) },
        [VOLUMES.auth]: { [AUTH_FILE]: input.authFile },
        [VOLUMES.tls]: {
          [TLS_FILES.cert]: input.tls.cert,
          [TLS_FILES.key]: input.tls.key,
          [TLS_FILES.serverCa]: input.tls.serverCa,
        },
      },
      processes: Array.from({ length: processes }, (_, i) => ({
        podName,
        process: i + 1,
        processes,
        listenAddr: "127.0.0.1",
        port: places.port(ordinal),
        sources,
        current,
        socketDir: places.socketDir(ordinal, i + 1),
        checkSeconds: timings.checkSeconds,
        canary: input.canary,
        canaryHoldSeconds: timings.canaryHoldSeconds,
        failureSeconds: timings.failureSeconds,
        drainSeconds: timings.drainSeconds,
      })),
    };
  });
}
