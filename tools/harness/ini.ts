/**
 * The harness's pgbouncer.ini comes from the program's own renderer: `podIniInputs` builds what the pod
 * would run, and only the version, listen address/port, database host/port and file paths are rewritten.
 */
import { type IniAuth, type IniInput, type IniProcess, renderIni } from "../../components/pgbouncer/ini";
import { type PodIniSettings, podIniInputs } from "../../components/pgbouncer/pod-ini";
import { supportsParameter, supportsSection } from "../../components/pgbouncer/versions";
import { runOk } from "./proc";
import type { PgBouncerFiles } from "./pgbouncer";

export const PGBOUNCER_BIN = "/usr/sbin/pgbouncer";

/** The local PgBouncer's release, from `pgbouncer --version` ("PgBouncer 1.18.0" → "1.18.0"). */
export async function localPgBouncerVersion(bin = PGBOUNCER_BIN): Promise<string> {
  const out = await runOk(bin, ["--version"]);
  const m = /PgBouncer (\d+\.\d+\.\d+)/.exec(out);
  if (!m) throw new Error(`harness: cannot read a version from "${bin} --version": ${out.trim()}`);
  return m[1];
}

/** What the harness changes in the pod's ini; nothing else may differ. */
/**
 * The rewrites every local run makes: PgBouncer on 127.0.0.1 at the port and paths the harness picked for
 * process `f`, the database at the local PostgreSQL.
 */
export function localRewrites(
  f: Pick<PgBouncerFiles, "port" | "authFile" | "unixSocketDir" | "pidfile" | "logfile">,
  pg: { readonly host: string; readonly port: number },
): Pick<HarnessRewrites, "listen" | "database" | "paths"> {
  return {
    listen: { addr: "127.0.0.1", port: f.port },
    database: { host: pg.host, port: pg.port },
    paths: {
      authFile: f.authFile,
      unixSocketDir: f.unixSocketDir,
      pidfile: f.pidfile,
      logfile: f.logfile,
    },
  };
}

export interface HarnessRewrites {
  /** The local PgBouncer's release (see {@link localPgBouncerVersion}). */
  readonly version: string;
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
   * (`/var/run/pgbouncer/<n>`) are rewritten to these. Required with several processes on a release that
   * has peering (1.19+).
   */
  readonly peerSocketDirs?: readonly string[];
  /** Where adjustments are reported. @default a line on stderr */
  readonly log?: (message: string) => void;
}

export interface HarnessIniInput {
  readonly input: IniInput;
  /** Settings changed because the local release lacks them, in words (each also logged). */
  readonly adjustments: readonly string[];
}

/**
 * The pod's ini input with the harness rewrites applied. PgBouncer 1.18 lacks `max_prepared_statements`
 * and the renderer refuses to emit it, so a local release without it gets `maxPreparedStatements` 0
 * (PgBouncer's own "off") and the change is reported, never hidden.
 */
export function harnessIniInput(
  settings: PodIniSettings,
  auth: Omit<IniAuth, "file">,
  rewrites: HarnessRewrites,
): HarnessIniInput {
  const pods = podIniInputs(settings, auth);
  const index = rewrites.processIndex ?? 0;
  const pod = pods[index];
  if (!pod) throw new Error(`harness: process ${index} does not exist; the stack runs ${pods.length}`);
  const adjustments: string[] = [];
  const process = harnessProcess(pod.process, rewrites, adjustments);
  let pool = pod.pool;
  if (pool.maxPreparedStatements > 0 && !supportsParameter(rewrites.version, "max_prepared_statements")) {
    adjustments.push(
      `local PgBouncer ${rewrites.version} lacks max_prepared_statements: pool.maxPreparedStatements ` +
        `${pool.maxPreparedStatements} -> 0 (protocol-level prepared statements will not work through ` +
        `this harness; pgbench must use -M simple or -M extended)`,
    );
    pool = { ...pool, maxPreparedStatements: 0 };
  }
  const log = rewrites.log ?? ((m: string) => globalThis.process.stderr.write(`harness: ${m}\n`));
  for (const a of adjustments) log(a);
  const input: IniInput = {
    ...pod,
    version: rewrites.version,
    listen: { addr: rewrites.listen.addr, port: rewrites.listen.port },
    database: { ...pod.database, host: rewrites.database.host, port: rewrites.database.port },
    pool,
    auth: { ...pod.auth, file: rewrites.paths.authFile },
    paths: {
      unixSocketDir: rewrites.paths.unixSocketDir,
      pidfile: rewrites.paths.pidfile,
      logfile: rewrites.paths.logfile,
    },
    ...(process ? { process } : {}),
  };
  return { input, adjustments };
}

/**
 * The pod's process settings for the harness: `so_reuseport` as the pod has it; peering kept with the
 * peers' socket directories rewritten where the local release has it, and dropped (reported) where not.
 */
function harnessProcess(
  pod: IniProcess | undefined,
  rewrites: HarnessRewrites,
  adjustments: string[],
): IniProcess | undefined {
  if (!pod) return undefined;
  const peering = pod.peerId !== undefined || (pod.peers?.length ?? 0) > 0;
  if (!peering) return pod;
  if (!supportsParameter(rewrites.version, "peer_id") || !supportsSection(rewrites.version, "peers")) {
    adjustments.push(
      `local PgBouncer ${rewrites.version} lacks peering (peer_id, [peers]; 1.19+): the processes run ` +
        `with so_reuseport but without peering, so a cancel request that reaches another process is lost`,
    );
    return { soReuseport: pod.soReuseport };
  }
  const dirs = rewrites.peerSocketDirs;
  const peers = pod.peers ?? [];
  if (!dirs || dirs.length < peers.length) {
    throw new Error("harness: several processes with peering need peerSocketDirs, one per process");
  }
  return { ...pod, peers: peers.map((p, j) => ({ ...p, host: dirs[j] })) };
}

/** pgbouncer.ini for the harness, rendered by the program's own renderer (see {@link harnessIniInput}). */
export function harnessIni(
  settings: PodIniSettings,
  auth: Omit<IniAuth, "file">,
  rewrites: HarnessRewrites,
): string {
  return renderIni(harnessIniInput(settings, auth, rewrites).input);
}

/** The value of `key` in an ini text (first occurrence), or undefined. */
export function iniValue(ini: string, key: string): string | undefined {
  for (const line of ini.split("\n")) {
    const m = /^\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && m[1] === key) return m[2];
  }
  return undefined;
}
