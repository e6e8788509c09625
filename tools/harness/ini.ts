/**
 * The harness's pgbouncer.ini comes from the program's own renderer: `podIniInputs` builds what the pod
 * would run, and only the listen address/port, the database host/port and file paths (TLS files included)
 * are rewritten.
 * Nothing is dropped: the local PgBouncer is the release the stack deploys (see `./binary`), and the
 * renderer refuses a parameter that the stack's `pgbouncer.version` lacks.
 */
import type { IniAuthSettings } from "../../components/credentials";
import {
  type IniInput,
  type IniProcess,
  type IniTls,
  renderIni,
  type PodIniSettings,
  podIniInputs,
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

/** The pod's ini input of one process with the harness rewrites applied, and nothing else changed. */
export function harnessIniInput(
  settings: PodIniSettings,
  auth: IniAuthSettings,
  rewrites: HarnessRewrites,
): IniInput {
  const pods = podIniInputs(settings, auth);
  const index = rewrites.processIndex ?? 0;
  const pod = pods[index];
  if (!pod) throw new Error(`harness: process ${index} does not exist; the stack runs ${pods.length}`);
  const process = harnessProcess(pod.process, rewrites);
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
    ...(process ? { process } : {}),
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

/** The pod's process settings with the peers' socket directories and port rewritten to the local ones. */
function harnessProcess(pod: IniProcess | undefined, rewrites: HarnessRewrites): IniProcess | undefined {
  if (!pod) return undefined;
  const peers = pod.peers ?? [];
  if (peers.length === 0) return pod;
  const dirs = rewrites.peerSocketDirs;
  if (!dirs || dirs.length < peers.length) {
    throw new Error("harness: several processes with peering need peerSocketDirs, one per process");
  }
  return { ...pod, peers: peers.map((p, j) => ({ ...p, host: dirs[j], port: rewrites.listen.port })) };
}

/** pgbouncer.ini for the harness, rendered by the program's own renderer (see {@link harnessIniInput}). */
export function harnessIni(
  settings: PodIniSettings,
  auth: IniAuthSettings,
  rewrites: HarnessRewrites,
): string {
  return renderIni(harnessIniInput(settings, auth, rewrites));
}
