/**
 * The harness's pgbouncer.ini comes from the program's own renderer: `podIniInput` builds the ini every pod
 * shares, and only the listen address/port, the database host/port and file paths (TLS files included) are
 * rewritten; each process then gets the lines its pod's script would add (its unix socket folder, peer_id and
 * its pod's peers over their sockets, so_reuseport for several), as one standalone pod of the fleet.
 * Nothing is dropped: the local PgBouncer is the release the stack deploys (see `./binary`), and the
 * renderer refuses a parameter that the stack's `pgbouncer.version` lacks.
 */
import type { IniAuthSettings } from "../../components/credentials";
import {
  type IniInput,
  type IniTls,
  renderIni,
  type PodIniSettings,
  peerId,
  podIniInput,
  supportsParameter,
} from "../../components/pgbouncer";
import { harnessPki } from "./tls";

/**
 * The rewrites every local run makes: PgBouncer on 127.0.0.1 at the port and paths the harness picked for
 * process `f` (a `PgBouncerFiles`), the database at the local PostgreSQL, the peers at the processes' local socket directories.
 */
export function localRewrites(
  f: {
    readonly port: number;
    readonly authFile: string;
    readonly unixSocketDir: string;
    readonly pidfile: string;
    readonly logfile: string;
    readonly index?: number;
    readonly peerSocketDirs?: readonly string[];
  },
  pg: { readonly host: string; readonly port: number },
  tls: HarnessTlsFiles = harnessTlsFiles(),
): HarnessRewrites {
  return {
    tls,
    listen: { addr: "127.0.0.1", port: f.port },
    database: { host: pg.host, port: pg.port },
    paths: {
      authFile: f.authFile,
      unixSocketDir: f.unixSocketDir,
      pidfile: f.pidfile,
      logfile: f.logfile,
    },
    ...(f.index !== undefined ? { processIndex: f.index } : {}),
    ...(f.peerSocketDirs ? { peerSocketDirs: f.peerSocketDirs } : {}),
  };
}

/** The local files the ini's TLS paths are rewritten to. */
export interface HarnessTlsFiles {
  /** `client_tls_cert_file`: what PgBouncer serves to clients. */
  readonly certFile: string;
  /** `client_tls_key_file`. */
  readonly keyFile: string;
  /** `server_tls_ca_file`: the CA PgBouncer verifies PostgreSQL against. */
  readonly serverCaFile: string;
}

/**
 * The harness PKI's files: PgBouncer serves its server certificate (SANs localhost, 127.0.0.1) and trusts its
 * CA, which also signed the certificate every harness PostgreSQL serves by default.
 */
export function harnessTlsFiles(): HarnessTlsFiles {
  const pki = harnessPki();
  return { certFile: pki.server.certFile, keyFile: pki.server.keyFile, serverCaFile: pki.ca.certFile };
}

/** What the harness changes in the pod's ini; nothing else may differ. */
export interface HarnessRewrites {
  /** Where the pod's TLS files (`/etc/pgbouncer/tls/…`) are locally. @default {@link harnessTlsFiles} */
  readonly tls?: HarnessTlsFiles;
  readonly listen: { readonly addr: string; readonly port: number };
  /** Where the local PostgreSQL listens; the database name stays the stack's. */
  readonly database: { readonly host: string; readonly port: number };
  readonly paths: {
    readonly authFile: string;
    readonly unixSocketDir: string;
    readonly pidfile: string;
    readonly logfile: string;
  };
  /**
   * Which process of a multi-process pod (`pgbouncer.processesPerPod` > 1) this ini is for, 0-based.
   * @default 0
   */
  readonly processIndex?: number;
  /**
   * The local unix socket directory of every process, in process order: the pod's peers
   * (`/var/run/pgbouncer/<n>`) are rewritten to these. Required with several processes (peering).
   */
  readonly peerSocketDirs?: readonly string[];
}

/**
 * The pod's shared ini input with the harness rewrites applied, as the standalone process
 * `rewrites.processIndex` of one pod (ordinal 0) would run it: nothing else changed.
 */
export function harnessIniInput(
  settings: PodIniSettings,
  auth: IniAuthSettings,
  rewrites: HarnessRewrites,
): IniInput {
  const pod = podIniInput(settings, auth, "harness");
  const processes = settings.workload.processesPerPod;
  const index = rewrites.processIndex ?? 0;
  if (index < 0 || index >= processes) {
    throw new Error(`harness: process ${index} does not exist; the stack runs ${processes}`);
  }
  const dirs = rewrites.peerSocketDirs;
  if (processes > 1 && (!dirs || dirs.length < processes)) {
    throw new Error("harness: several processes with peering need peerSocketDirs, one per process");
  }
  return {
    ...pod,
    listen: { addr: rewrites.listen.addr, port: rewrites.listen.port },
    database: { ...pod.database, host: rewrites.database.host, port: rewrites.database.port },
    auth: { ...pod.auth, file: rewrites.paths.authFile },
    paths: {
      unixSocketDir: rewrites.paths.unixSocketDir,
      pidfile: rewrites.paths.pidfile,
      logfile: rewrites.paths.logfile,
    },
    // The lines a pod's script adds for its process (components/pgbouncer/pgbouncer-pod.sh): its peer_id,
    // and with several processes so_reuseport and its pod's peers over their sockets.
    // (A release without peering, 1.18 in the version-gating tests, runs one process without a peer_id.)
    process:
      processes === 1
        ? supportsParameter(pod.version, "peer_id")
          ? { peerId: peerId(0, 1, 1) }
          : undefined
        : {
            soReuseport: true,
            peerId: peerId(0, index + 1, processes),
            peers: Array.from({ length: processes }, (_, j) => ({
              id: peerId(0, j + 1, processes),
              host: (dirs ?? [])[j],
              port: rewrites.listen.port,
            })),
          },
    tls: harnessTls(pod.tls, rewrites.tls ?? harnessTlsFiles()),
  };
}

/** The pod's TLS settings with its file paths rewritten to the local ones; modes and protocols unchanged. */
function harnessTls(pod: IniTls, files: HarnessTlsFiles): IniTls {
  return {
    client: { ...pod.client, certFile: files.certFile, keyFile: files.keyFile },
    server: { ...pod.server, ...(pod.server.caFile !== undefined ? { caFile: files.serverCaFile } : {}) },
  };
}

/**
 * The ini input with each of PgBouncer's legs (client, server) as rendered (`true`) or without TLS (`false`:
 * `*_tls_sslmode = disable`); nothing else changes.
 */
export function withTlsLegs(input: IniInput, legs: { client: boolean; server: boolean }): IniInput {
  const tls = input.tls;
  return {
    ...input,
    tls: {
      client: { ...tls.client, sslmode: legs.client ? tls.client.sslmode : "disable" },
      server: { ...tls.server, sslmode: legs.server ? tls.server.sslmode : "disable" },
    },
  };
}

/** pgbouncer.ini for the harness, rendered by the program's own renderer (see {@link harnessIniInput}). */
export function harnessIni(
  settings: PodIniSettings,
  auth: IniAuthSettings,
  rewrites: HarnessRewrites,
): string {
  return renderIni(harnessIniInput(settings, auth, rewrites));
}
