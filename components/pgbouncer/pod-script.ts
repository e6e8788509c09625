/**
 * The PgBouncer container's PID 1 (`pgbouncer-pod.sh`, beside this file): it runs one PgBouncer process on
 * the newest configuration PgBouncer accepts, reloads it when the kubelet updates the mounted files (after
 * validating them, behind a canary pod), keeps the readiness file, and drains the process on the preStop
 * hook's signal. The pod runs this text; so does the local fleet (tools/fleet/), with the same environment
 * but for the folders.
 */
import * as fs from "fs";
import * as path from "path";

/** The script's name as `$0`: it shows in `ps` and in the shell's own messages. */
export const POD_SCRIPT_NAME = "pgbouncer-pod";

/** The script's text. */
export const POD_SCRIPT: string = fs.readFileSync(path.join(__dirname, "pgbouncer-pod.sh"), "utf8");

/** The variable with the pod's name, `<statefulset>-<ordinal>`: the ordinal gives every process its peer_id. */
export const POD_NAME_ENV = "PGBOUNCER_POD_NAME";

/** What the script is told, through its environment. */
export interface PodScriptEnv {
  /** The pod's name; in a pod the downward API gives it ({@link POD_NAME_ENV}). @default not set here */
  readonly podName?: string;
  /** This process's number, 1-based. */
  readonly process: number;
  /** PgBouncer processes per pod. */
  readonly processes: number;
  /** The shared ini's `listen_addr` and `listen_port`. */
  readonly listenAddr: string;
  readonly port: number;
  /** The mounted folders whose `..data` the kubelet swaps: the config, the auth file, the TLS files. */
  readonly sources: readonly string[];
  /** The folder the shared ini's file paths name (`<applied>/current`): the validated generation. */
  readonly current: string;
  /** This process's unix socket folder, `<socket root>/<process>`. */
  readonly socketDir: string;
  /** How often the mounts are compared, in seconds. */
  readonly checkSeconds: number;
  /** The canary's DNS name (ready pod 0 only), or "" when every pod applies a change at once. */
  readonly canary: string;
  /** How long a change waits behind the canary, in seconds. */
  readonly canaryHoldSeconds: number;
  /** How long an unexplained failed server login keeps the process unready, in seconds. */
  readonly failureSeconds: number;
  /** How long a drain waits for clients to leave before it pauses PgBouncer, in seconds. */
  readonly drainSeconds: number;
  /** Logins of the auth file the server-login check logs in with, at most (`serverLoginChecks`). */
  readonly checkLogins: number;
  /** The pgbouncer binary. @default `pgbouncer` on PATH */
  readonly bin?: string;
}

/** The environment variables the script reads, from {@link PodScriptEnv}. */
export function podScriptEnv(e: PodScriptEnv): Record<string, string> {
  return {
    ...(e.podName !== undefined ? { [POD_NAME_ENV]: e.podName } : {}),
    PGBOUNCER_PROCESS: String(e.process),
    PGBOUNCER_PROCESSES: String(e.processes),
    PGBOUNCER_LISTEN_ADDR: e.listenAddr,
    PGBOUNCER_PORT: String(e.port),
    PGBOUNCER_SOURCES: e.sources.join(" "),
    PGBOUNCER_CURRENT: e.current,
    PGBOUNCER_SOCKET_DIR: e.socketDir,
    PGBOUNCER_CHECK_SECONDS: String(e.checkSeconds),
    PGBOUNCER_CANARY: e.canary,
    PGBOUNCER_CANARY_HOLD_SECONDS: String(e.canaryHoldSeconds),
    PGBOUNCER_FAILURE_SECONDS: String(e.failureSeconds),
    PGBOUNCER_DRAIN_SECONDS: String(e.drainSeconds),
    PGBOUNCER_CHECK_LOGINS: String(e.checkLogins),
    ...(e.bin !== undefined ? { PGBOUNCER_BIN: e.bin } : {}),
  };
}

/** The container command: `/bin/sh -c SCRIPT pgbouncer-pod`. */
export function podScriptCommand(): string[] {
  return ["/bin/sh", "-c", POD_SCRIPT, POD_SCRIPT_NAME];
}

/** The readiness file the script keeps in the process's socket folder. */
export function readyFile(socketDir: string): string {
  return `${socketDir}/ready`;
}
