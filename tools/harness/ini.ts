/**
 * The harness's pgbouncer.ini comes from the program's own renderer: `podIniInput` builds what the pod
 * would run, and only the version, listen address/port, database host/port and file paths are rewritten.
 */
import { type IniAuth, type IniInput, type IniProcess, renderIni } from "../../components/pgbouncer/ini";
import { type PodIniSettings, podIniInput } from "../../components/pgbouncer/pod-ini";
import { supportsParameter } from "../../components/pgbouncer/versions";
import { runOk } from "./proc";

export const PGBOUNCER_BIN = "/usr/sbin/pgbouncer";

/** The local PgBouncer's release, from `pgbouncer --version` ("PgBouncer 1.18.0" → "1.18.0"). */
export async function localPgBouncerVersion(bin = PGBOUNCER_BIN): Promise<string> {
  const out = await runOk(bin, ["--version"]);
  const m = /PgBouncer (\d+\.\d+\.\d+)/.exec(out);
  if (!m) throw new Error(`harness: cannot read a version from "${bin} --version": ${out.trim()}`);
  return m[1];
}

/** What the harness changes in the pod's ini; nothing else may differ. */
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
   * Several processes on one port (`so_reuseport`); only for the multi-process benchmark.
   * @default one process, as `podIniInput` renders it
   */
  readonly process?: IniProcess;
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
  const pod = podIniInput(settings, auth);
  const adjustments: string[] = [];
  let pool = pod.pool;
  if (pool.maxPreparedStatements > 0 && !supportsParameter(rewrites.version, "max_prepared_statements")) {
    adjustments.push(
      `local PgBouncer ${rewrites.version} lacks max_prepared_statements: pool.maxPreparedStatements ` +
        `${pool.maxPreparedStatements} -> 0 (protocol-level prepared statements will not work through ` +
        `this harness; pgbench must use -M simple or -M extended)`,
    );
    pool = { ...pool, maxPreparedStatements: 0 };
  }
  const log = rewrites.log ?? ((m: string) => process.stderr.write(`harness: ${m}\n`));
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
    ...(rewrites.process ? { process: rewrites.process } : {}),
  };
  return { input, adjustments };
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
