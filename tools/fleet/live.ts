/**
 * The local fleet from a cluster's live objects (the e2e's bridge to the real binaries): the live ConfigMap's
 * ini, the live Secrets' and ConfigMaps' files as the pod template's volumes lay them out, and the live
 * StatefulSet's PgBouncer containers (their command, the pod script's text, and their environment, with the
 * live pod's name where the downward API gives it). Only addresses, ports and folders are made local, on the
 * ini's text ({@link localIniText}, the text-level counterpart of ./render.ts's `localIniInput`), each rewrite
 * checked: a file the fleet cannot make local is refused, naming the line.
 */
import { CURRENT_DIR } from "../../components/pgbouncer";
import {
  type ContainerLike,
  type FleetPlaces,
  INI_FILE,
  type MountFiles,
  type ReplicaSpec,
  localContainers,
  scriptContainers,
} from "./render";

/** One live pod: its ordinal, its name, and the DNS name its peers reach it by. */
export interface LivePodName {
  readonly ordinal: number;
  readonly name: string;
  readonly dnsName: string;
}

/** What {@link localIniText} moves, and where to. */
export interface IniRewrites {
  /** The replica's address and port (`listen_addr`, `listen_port`). */
  readonly listen: { readonly addr: string; readonly port: number };
  /** Every database's `host=` and `port=`: they must be `from`'s, and become `to`'s. */
  readonly database: {
    readonly from: { readonly host: string; readonly port: number };
    readonly to: { readonly host: string; readonly port: number };
  };
  /** Every peer's `host=` must be a key (a pod's DNS name) and its `port=` `peerPort`; it becomes the local port. */
  readonly peers: ReadonlyMap<string, { readonly host: string; readonly port: number }>;
  readonly peerPort: number;
  /** Every file path must be in `from` (the pods' `<applied>/current`), and moves to `to`. */
  readonly current: { readonly from: string; readonly to: string };
}

/** The `[pgbouncer]` settings whose value is a file. */
const PATH_KEYS =
  /^(auth_file|auth_hba_file|client_tls_cert_file|client_tls_key_file|client_tls_ca_file|server_tls_cert_file|server_tls_key_file|server_tls_ca_file)$/;

function fail(line: number, text: string, why: string): never {
  throw new Error(`fleet: the live ini's line ${line} (${text.trim()}): ${why}`);
}

/** `host=… port=…` of a connection string, rewritten; both must be there, once. */
function moveHostPort(
  value: string,
  at: number,
  text: string,
  to: (host: string, port: number) => { host: string; port: number },
): string {
  const host = /(^|\s)host=(\S+)/.exec(value);
  const port = /(^|\s)port=(\d+)/.exec(value);
  if (!host || !port) fail(at, text, "no host= and port= to make local");
  const moved = to(host[2], Number(port[2]));
  return value
    .replace(/(^|\s)host=\S+/, `$1host=${moved.host}`)
    .replace(/(^|\s)port=\d+/, `$1port=${moved.port}`);
}

/**
 * The shared ini of one replica, from the live ConfigMap's text: `listen_addr` and `listen_port` the
 * replica's, every database's host and port the local PostgreSQL's, every peer's the local port of the pod
 * its DNS name names, every file path in the local generation's folder. Every other line is left as it is,
 * byte for byte; a line the fleet cannot make local (a database elsewhere, a peer that is no live pod, a path
 * outside the generation's folder) fails, naming it.
 */
export function localIniText(ini: string, w: IniRewrites): string {
  let section = "";
  const seen = { listen_addr: 0, listen_port: 0, database: 0 };
  const lines = ini.split("\n").map((text, i) => {
    const at = i + 1;
    const trimmed = text.trim();
    if (trimmed === "" || trimmed.startsWith(";") || trimmed.startsWith("#")) return text;
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header) {
      section = header[1].trim();
      return text;
    }
    const kv = /^(\s*)([^=\s][^=]*?)(\s*=\s*)(.*)$/.exec(text);
    if (!kv) return text;
    const [, lead, key, eq, value] = kv;
    const put = (v: string) => `${lead}${key}${eq}${v}`;
    if (section === "databases") {
      seen.database++;
      return put(
        moveHostPort(value, at, text, (host, port) => {
          const from = w.database.from;
          if (host !== from.host || port !== from.port) {
            fail(at, text, `the database is not at ${from.host}:${from.port}`);
          }
          return w.database.to;
        }),
      );
    }
    if (section === "peers") {
      return put(
        moveHostPort(value, at, text, (host, port) => {
          const local = w.peers.get(host);
          if (!local) fail(at, text, `peer host ${host} is no live pod's DNS name`);
          if (port !== w.peerPort) fail(at, text, `peer port ${port} is not the pods' port ${w.peerPort}`);
          return local;
        }),
      );
    }
    if (section !== "pgbouncer") return text;
    if (key === "listen_addr") {
      seen.listen_addr++;
      return put(w.listen.addr);
    }
    if (key === "listen_port") {
      seen.listen_port++;
      return put(String(w.listen.port));
    }
    if (PATH_KEYS.test(key) && value !== "") {
      if (value !== w.current.from && !value.startsWith(`${w.current.from}/`)) {
        fail(at, text, `${key} is not in ${w.current.from}`);
      }
      return put(w.current.to + value.slice(w.current.from.length));
    }
    return text;
  });
  for (const key of ["listen_addr", "listen_port"] as const) {
    if (seen[key] !== 1) throw new Error(`fleet: the live ini sets ${key} ${seen[key]} times, not once`);
  }
  if (seen.database === 0) throw new Error("fleet: the live ini has no database");
  return lines.join("\n");
}

/** What a live fleet is made of. */
export interface LiveSource {
  /** The live pods, each with the DNS name derived from its hostname and subdomain. */
  readonly pods: readonly LivePodName[];
  /** The live ConfigMap's shared ini. */
  readonly ini: string;
  /** The volume that mounts the ini (its file is {@link INI_FILE}). */
  readonly configVolume: string;
  /** Every other volume the scripts watch: its files, as the kubelet would lay them out. */
  readonly volumeFiles: Readonly<Record<string, MountFiles>>;
  /** The live pod template's containers. */
  readonly containers: readonly ContainerLike[];
  readonly processesPerPod: number;
  /** Where the live ini's database is (the stack's PostgreSQL), and the pods' client port. */
  readonly database: { readonly host: string; readonly port: number };
  readonly podPort: number;
}

/**
 * The replicas `ordinals` of a live fleet: each one's shared ini from the live text ({@link localIniText}),
 * the other volumes' live files, and its containers from the live template (./render.ts's `localContainers`),
 * with the live pod's name; the database at `postgres`.
 */
export function specsFromLive(
  live: LiveSource,
  places: FleetPlaces,
  ordinals: readonly number[],
  postgres: { readonly host: string; readonly port: number },
): ReplicaSpec[] {
  const scripts = scriptContainers(live.containers, live.processesPerPod);
  const peers = new Map(
    live.pods.map((p) => [p.dnsName, { host: "127.0.0.1", port: places.port(p.ordinal) }]),
  );
  return ordinals.map((ordinal) => {
    const pod = live.pods.find((p) => p.ordinal === ordinal);
    if (!pod) throw new Error(`fleet: no live pod of ordinal ${ordinal}`);
    const ini = localIniText(live.ini, {
      listen: { addr: "127.0.0.1", port: places.port(ordinal) },
      database: { from: live.database, to: postgres },
      peers,
      peerPort: live.podPort,
      current: { from: CURRENT_DIR, to: places.current },
    });
    const mounts: Record<string, MountFiles> = { [live.configVolume]: { [INI_FILE]: ini } };
    const processes = localContainers(scripts, pod.name, ordinal, places, mounts, live.volumeFiles);
    return { podName: pod.name, mounts, processes };
  });
}
