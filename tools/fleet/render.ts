/**
 * What one replica of the local fleet is started from: the files its pod mounts and the environment of each
 * PgBouncer container's script, taken from the program's own render. The shared ini is the ConfigMap's text
 * (`renderIni(podIniInput(…))`, as the component renders it) and the containers are the StatefulSet's pod
 * template (`podSpec`, the component's pure function): their environment, their mounts and the volumes' files.
 * Only addresses, ports and folders are made local, each by a named rewrite that must apply; anything else in
 * them the fleet runs as rendered.
 */
import type { IniAuthSettings } from "../../components/credentials";
import {
  CURRENT_DIR,
  type IniInput,
  INI_FILE,
  AUTH_FILE,
  POD_NAME_ENV,
  type Peer,
  STATEFULSET_NAME,
  TLS_FILE_NAMES,
  TLS_SECRET_KEYS,
  canaryDnsName,
  podDnsName,
  podIniInput,
  podName,
  renderIni,
} from "../../components/pgbouncer";
import { podSpec } from "../../components/pgbouncer/resources";
import type { StackSettings } from "../../stacks/settings";

export { AUTH_FILE, INI_FILE };

/** The namespace the fleet renders for: the pods' and the canary's DNS names are in it. */
export const FLEET_NAMESPACE = "fleet";

/** The canary Service's DNS name as the pods are told it (the fleet's `getent` answers it). */
export const CANARY_NAME = canaryDnsName(FLEET_NAMESPACE);

/** One mounted folder's files: name → content. */
export type MountFiles = Readonly<Record<string, string>>;

/** The pod's volumes that carry files the kubelet updates: the shared ini, the auth file, the TLS files. */
export const VOLUMES = { config: "config", auth: "auth", tls: "tls" } as const;

/** The TLS volume's file names (the pod's projected volume). */
export const TLS_FILES = TLS_FILE_NAMES;

/** One PgBouncer container of a replica: the script's environment as the pod template gives it, made local. */
export interface ContainerSpec {
  /** 1-based. */
  readonly process: number;
  /** The container's command as the pod template has it: `/bin/sh -c <the pod script's text> pgbouncer-pod`. */
  readonly command: readonly string[];
  /** Its unix socket folder (`PGBOUNCER_SOCKET_DIR`). */
  readonly socketDir: string;
  readonly env: Readonly<Record<string, string>>;
}

/** A replica as its pod would run it, with every address and folder local. */
export interface ReplicaSpec {
  /** `pgbouncer-<ordinal>`. */
  readonly podName: string;
  /** Volume name → its files; the fleet lays each out as the kubelet does, in {@link FleetPlaces.mountDir}. */
  readonly mounts: Readonly<Record<string, MountFiles>>;
  /** One per PgBouncer container of the pod template, in process order. */
  readonly processes: readonly ContainerSpec[];
}

/** Where the fleet puts things; the rewrites put them into the ini and the environment. */
export interface FleetPlaces {
  /**
   * The pods' `<applied>/current`: the same path in every container, as in the pods (each container mounts
   * its own `applied` volume at one path; the fleet bind-mounts each process's own folder there).
   */
  readonly current: string;
  mountDir(ordinal: number, volume: string): string;
  /** Process `process` (1-based) of replica `ordinal`: its unix socket folder, `<socket root>/<process>`. */
  socketDir(ordinal: number, process: number): string;
  /** Replica `ordinal`'s client port on 127.0.0.1 (its pod's address and `listen_port`). */
  port(ordinal: number): number;
}

/** The script's timings (the stack's `pgbouncer.*` settings of these names), the same in every container. */
export interface ScriptTimings {
  /** `pgbouncer.reloadCheckSeconds`. */
  readonly checkSeconds: number;
  readonly canaryHoldSeconds: number;
  /** `pgbouncer.serverLoginFailureSeconds`. */
  readonly failureSeconds: number;
  readonly drainSeconds: number;
}

/** What {@link specsFromRender} renders from. */
export interface RenderInput {
  readonly settings: StackSettings;
  /** Replicas and processes per replica (the stack's `pgbouncer.replicas`/`processesPerPod` unless told). */
  readonly replicas: number;
  readonly processes: number;
  /** The auth file and its ini settings, as the program builds them from Vault (`buildCredentials`). */
  readonly authFile: string;
  readonly iniAuth: IniAuthSettings;
  /** The server-login check's logins (`buildCredentials`' `serverLoginChecks`). */
  readonly serverLoginChecks: number;
  /** The TLS volume's PEM texts: the pooler's certificate and key, PostgreSQL's CA. */
  readonly tls: { readonly cert: string; readonly key: string; readonly serverCa: string };
  readonly postgres: { readonly host: string; readonly port: number };
  /** Gate changes behind the canary, as the pods do; `false` (a test's control) tells every script "". */
  readonly canary: boolean;
  readonly timings: ScriptTimings;
  /**
   * `fleet`: `[peers]` as rendered (every process of every replica). `pod`: the control, as the Deployment
   * rendered: no peer of another replica (a pod's processes still peer over their sockets).
   * @default fleet
   */
  readonly peers?: "fleet" | "pod";
}

/** The settings the pods of `input` are rendered from: its size and timings in the stack's own keys. */
export function fleetRenderSettings(input: RenderInput): StackSettings {
  const t = input.timings;
  return {
    ...input.settings,
    workload: {
      ...input.settings.workload,
      replicas: input.replicas,
      processesPerPod: input.processes,
      reloadCheckSeconds: t.checkSeconds,
      canaryHoldSeconds: t.canaryHoldSeconds,
      serverLoginFailureSeconds: t.failureSeconds,
      drainSeconds: t.drainSeconds,
    },
  };
}

/** `from` with its `prefix` replaced, or an error naming the rewrite: the render changed under the fleet. */
function rebase(what: string, from: string, prefix: string, to: string): string {
  if (from !== prefix && !from.startsWith(`${prefix}/`)) {
    throw new Error(
      `fleet: ${what} is ${from}, not in ${prefix}; the render changed, update tools/fleet/render.ts`,
    );
  }
  return to + from.slice(prefix.length);
}

/**
 * The shared ini of replica `ordinal`, from the ConfigMap's input: listening on 127.0.0.1 at the replica's
 * port (the pods share one port on addresses of their own), the database at the local PostgreSQL, the
 * peers' DNS names at their replicas' local ports, the generation's folder local. Nothing else changes.
 */
export function localIniInput(
  pod: IniInput,
  input: RenderInput,
  places: FleetPlaces,
  ordinal: number,
): IniInput {
  const current = (what: string, p: string) => rebase(what, p, CURRENT_DIR, places.current);
  const ordinalOf = (peer: Pick<Peer, "id" | "host">): number => {
    for (let o = 0; o < input.replicas; o++) if (podDnsName(o, FLEET_NAMESPACE) === peer.host) return o;
    throw new Error(`fleet: peer ${peer.id} is at ${peer.host}, no pod of the fleet`);
  };
  const peers = (pod.process?.peers ?? [])
    .filter((p) => (input.peers ?? "fleet") === "fleet" || ordinalOf(p) === ordinal)
    .map((p) => ({ ...p, host: "127.0.0.1", port: places.port(ordinalOf(p)) }));
  const { client, server } = pod.tls;
  return {
    ...pod,
    listen: { addr: "127.0.0.1", port: places.port(ordinal) },
    database: { ...pod.database, host: input.postgres.host, port: input.postgres.port },
    auth: { ...pod.auth, file: current("auth_file", pod.auth.file) },
    process: { ...pod.process, peers },
    tls: {
      client: {
        ...client,
        certFile: current("client_tls_cert_file", client.certFile),
        keyFile: current("client_tls_key_file", client.keyFile),
      },
      server: {
        ...server,
        ...(server.caFile ? { caFile: current("server_tls_ca_file", server.caFile) } : {}),
      },
    },
  };
}

/**
 * The replicas `ordinals` as the StatefulSet's pod template runs them: per replica the ConfigMap's ini (made
 * local by {@link localIniInput}), the auth Secret's file and the TLS files in the volumes the template
 * mounts, and per PgBouncer container the environment the template gives its script, with the downward
 * API's pod name filled in and its folders, address and port made local.
 */
export function specsFromRender(
  input: RenderInput,
  places: FleetPlaces,
  ordinals: readonly number[],
): ReplicaSpec[] {
  const settings = fleetRenderSettings(input);
  const pod = podIniInput(settings, input.iniAuth, FLEET_NAMESPACE);
  const template = podSpec(settings, {
    configMap: "pgbouncer-config",
    authSecret: "pgbouncer-auth",
    exporterSecret: "pgbouncer-exporter",
    instance: STATEFULSET_NAME,
    canary: CANARY_NAME,
    checkLogins: input.serverLoginChecks,
    tlsSecret: "pgbouncer-tls",
    serverCa: { kind: "secret", name: "pgbouncer-server-ca", key: TLS_SECRET_KEYS.ca },
  });
  const volumeFiles: Record<string, MountFiles> = {
    [VOLUMES.auth]: { [AUTH_FILE]: input.authFile },
    [VOLUMES.tls]: {
      [TLS_FILE_NAMES.cert]: input.tls.cert,
      [TLS_FILE_NAMES.key]: input.tls.key,
      [TLS_FILE_NAMES.serverCa]: input.tls.serverCa,
    },
  };
  const scripts = scriptContainers(template.containers as ContainerLike[], input.processes);
  return ordinals.map((ordinal) => {
    const name = podName(ordinal);
    const ini = renderIni(localIniInput(pod, input, places, ordinal));
    const mounts: Record<string, MountFiles> = { [VOLUMES.config]: { [INI_FILE]: ini } };
    const processes = localContainers(scripts, name, ordinal, places, mounts, volumeFiles, {
      canary: input.canary,
    });
    return { podName: name, mounts, processes };
  });
}

/** The pod template's PgBouncer containers (those whose script is told its process): `processes` of them. */
export function scriptContainers(containers: readonly ContainerLike[], processes: number): ContainerLike[] {
  const scripts = containers.filter((c) => c.env?.some((e) => e.name === "PGBOUNCER_PROCESS"));
  if (scripts.length !== processes) {
    throw new Error(`fleet: the pod template runs ${scripts.length} scripts, not ${processes}`);
  }
  return scripts;
}

/**
 * The PgBouncer containers of the pod `name` (replica `ordinal`) as the pod template runs them: each one's
 * command, and its environment with the downward API's pod name filled in and only its place made local (the
 * listen address and port, the generation's folder, the socket folder, the mounted folders it watches; the
 * canary's name stays, unless `canary` is false, a test's control). Each watched folder's volume must have
 * files: in `mounts` (the replica's own, which it adds to) or in `volumeFiles`.
 */
export function localContainers(
  scripts: readonly ContainerLike[],
  name: string,
  ordinal: number,
  places: FleetPlaces,
  mounts: Record<string, MountFiles>,
  volumeFiles: Readonly<Record<string, MountFiles>>,
  opts: { readonly canary?: boolean } = {},
): ContainerSpec[] {
  return scripts.map((c): ContainerSpec => {
    const byMount = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name" && e.name === POD_NAME_ENV) env[e.name] = name;
      else if (typeof e.value === "string") env[e.name] = e.value;
      else throw new Error(`fleet: ${c.name}'s ${e.name} is neither a value nor the pod's name`);
    }
    const command = c.command;
    if (!Array.isArray(command) || !command.every((x): x is string => typeof x === "string")) {
      throw new Error(`fleet: ${c.name} has no command the fleet can run`);
    }
    const process = Number(env.PGBOUNCER_PROCESS);
    const local: Record<string, string> = {
      PGBOUNCER_LISTEN_ADDR: "127.0.0.1",
      PGBOUNCER_PORT: String(places.port(ordinal)),
      PGBOUNCER_CURRENT: rebase(
        "PGBOUNCER_CURRENT",
        env.PGBOUNCER_CURRENT ?? "",
        CURRENT_DIR,
        places.current,
      ),
      PGBOUNCER_SOCKET_DIR: places.socketDir(ordinal, process),
      PGBOUNCER_SOURCES: (env.PGBOUNCER_SOURCES ?? "")
        .split(" ")
        .map((dir) => {
          const volume = byMount.get(dir);
          if (volume === undefined)
            throw new Error(`fleet: ${c.name} watches ${dir}, which it does not mount`);
          if (!(volume in mounts) && !(volume in volumeFiles)) {
            throw new Error(
              `fleet: ${c.name} mounts volume ${volume} at ${dir}; the fleet has no files for it`,
            );
          }
          mounts[volume] ??= volumeFiles[volume];
          return places.mountDir(ordinal, volume);
        })
        .join(" "),
      PGBOUNCER_CANARY: opts.canary === false ? "" : (env.PGBOUNCER_CANARY ?? ""),
    };
    for (const k of Object.keys(local)) {
      if (env[k] === undefined) throw new Error(`fleet: ${c.name} has no ${k}; the render changed`);
    }
    return { process, command, socketDir: local.PGBOUNCER_SOCKET_DIR, env: { ...env, ...local } };
  });
}

/** The fields of a container the fleet reads (the render's pod template, or a live one, has plain values). */
export interface ContainerLike {
  readonly name: string;
  readonly command?: unknown;
  readonly env?: readonly {
    readonly name: string;
    readonly value?: unknown;
    readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath?: unknown } };
  }[];
  readonly volumeMounts?: readonly { readonly name: string; readonly mountPath: string }[];
}
