/**
 * The local fleet: N replicas of P PgBouncer processes (the release the stacks deploy) in front of a local
 * PostgreSQL 15 that serves TLS only, each replica configured exactly as its pod configures itself: the same
 * shared ini, auth file and TLS files mounted the way the kubelet mounts them, and every PgBouncer process
 * run by the pod's own script (`components/pgbouncer/pgbouncer-pod.sh`) with the pod's environment, folders
 * local. A balancer in front picks a ready replica at random for each new connection, as kube-proxy does.
 *
 * A container, locally: `unshare --mount` (its own mount namespace, as a container has), its own `applied`
 * folder bind-mounted at the one path every container sees (the pods mount a volume of their own there),
 * then `setpriv` to the `postgres` user and `exec` of the container's argv (`/bin/sh -c <script>
 * pgbouncer-pod`): the script's PID is the spawned PID, as PID 1 is the script in the pod. Its PATH holds only
 * what the script's header names (links), `pgbouncer` (the release the stacks deploy, or the binary the
 * caller names), and a `getent` that stands in for the cluster DNS. The balancer runs in a worker thread
 * (./balancer.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { buildCredentials } from "../../components/credentials";
import { readyFile } from "../../components/pgbouncer";
import { type StackSettings, parseSettings } from "../../stacks/settings";
import { rawStackConfig, stackFileConfig } from "../../stacks/stack-file";
import { withSetting } from "../render/main";
import { localPgBouncerVersion, pgbouncerBinary } from "../harness/binary";
import { type Conn, type TlsPostgres, startTlsPostgres } from "../harness/postgres";
import {
  RUN_AS,
  exited,
  freePort,
  makeRunDir,
  runAsIds,
  runnableCopy,
  signal,
  sleep,
  track,
  untrack,
  within,
} from "../harness/proc";
import { HARNESS_APP_USER, harnessVaultData, postgresPasswordSql } from "../harness/stack";
import { type KubeletTlsDir, LOCAL_NAME, type TestCa, kubeletTlsDir } from "../harness/tls";
import { type Balancer, startBalancer } from "./balancer";
import { type LiveSource, specsFromLive } from "./live";
import {
  type FleetPlaces,
  type MountFiles,
  type RenderInput,
  type ReplicaSpec,
  type ScriptTimings,
  specsFromRender,
} from "./render";

/**
 * What the script's header says it runs ("POSIX sh, and from Debian's base or busybox: …"): the only
 * commands on its PATH, besides `pgbouncer` and the `getent` stand-in.
 */
export const SCRIPT_COMMANDS = [
  "cp",
  "grep",
  "ln",
  "ls",
  "mkdir",
  "mkfifo",
  "mv",
  "rm",
  "sleep",
  "tail",
] as const;

/** The script's timings when the caller names none: short, for a fleet on a laptop. */
export const FLEET_TIMINGS: ScriptTimings = {
  checkSeconds: 2,
  canaryHoldSeconds: 10,
  failureSeconds: 30,
  drainSeconds: 30,
};

export interface FleetOptions {
  /** The stack's settings; `pgbouncer.replicas` and `processesPerPod` size the fleet. */
  readonly settings: StackSettings;
  /** @default {@link FLEET_TIMINGS} */
  readonly timings?: Partial<ScriptTimings>;
  /** The preStop hook's sleep before it signals the script. @default the stack's preStopDelaySeconds */
  readonly preStopDelaySeconds?: number;
  /** How long a replaced replica may take to stop. @default the stack's terminationGracePeriodSeconds */
  readonly terminationGracePeriodSeconds?: number;
  /** Gate changes behind replica 0. @default true */
  readonly canary?: boolean;
  /** `fleet`: peers across replicas; `pod`: today's rendering, none across replicas. @default fleet */
  readonly peers?: "fleet" | "pod";
  /** @default a random one */
  readonly appPassword?: string;
  /** @default a random one */
  readonly statsPassword?: string;
  /** The second login's password, when the stack has `credentials.secondLogin`. @default a random one */
  readonly secondPassword?: string;
  /** Progress lines. @default none */
  readonly log?: (line: string) => void;
  /**
   * Run a cluster's live objects instead of the program's render (./live.ts): `settings` then size nothing
   * but PostgreSQL (`max_connections`) and the preStop and grace timings, and `timings`, `canary`, `peers`
   * and the passwords above are the live objects' own. @default the render
   */
  readonly live?: LiveFleetOptions;
  /**
   * The `pgbouncer` on every container's PATH; it must report the stack's `pgbouncer.version`, the release the
   * ini is rendered for (e.g. `patchedPgbouncerBinary()`, that release with the peer-pool patch).
   * @default the release the stacks deploy, as the harness finds it (`pgbouncerBinary()`)
   */
  readonly pgbouncerBin?: string;
}

/** A fleet of a cluster's live objects, in front of a PostgreSQL that has the logins their auth file holds. */
export interface LiveFleetOptions {
  readonly source: LiveSource;
  /** Signs PostgreSQL's certificate: the CA the live ini's `server_tls_ca_file` holds. @default one of its own */
  readonly postgresCa?: TestCa;
  /** PostgreSQL's logins, user -> password, set the ordinary way; the first owns the database. */
  readonly logins: ReadonlyMap<string, string>;
  /** Who {@link Fleet.conn} logs in as, verifying the pooler against `rootCaPem` under `hostname`. */
  readonly client: {
    readonly user: string;
    readonly password: string;
    readonly rootCaPem: string;
    readonly hostname: string;
  };
}

/** The script's timings as the stack sets them: what a pod does in the cluster. */
export function stackTimings(settings: StackSettings): ScriptTimings {
  const w = settings.workload;
  return {
    checkSeconds: w.reloadCheckSeconds,
    canaryHoldSeconds: w.canaryHoldSeconds,
    failureSeconds: w.serverLoginFailureSeconds,
    drainSeconds: w.drainSeconds,
  };
}

/**
 * A stack's settings with `sets` (`section.field` → value, as `npm run render -- --set`), read and checked as
 * the program reads them: the pool budget and every other check apply to the fleet too.
 */
export function fleetSettings(stack: string, sets: Readonly<Record<string, string>> = {}): StackSettings {
  const config = Object.entries(sets).reduce((c, [k, v]) => withSetting(c, k, v), stackFileConfig(stack));
  return parseSettings(rawStackConfig(config));
}

/** One PgBouncer container of a replica. */
export interface FleetProcess {
  /** 1-based. */
  readonly process: number;
  readonly socketDir: string;
  /** The replica's pod name, as its script is told it. */
  readonly podName: string;
  /** The script's PID while it runs (the container's PID 1). */
  pid(): number | undefined;
  /** The PID of the PgBouncer the script runs (its own ini's, not the drain's relay), while it runs. */
  pgbouncerPid(): number | undefined;
  /** The PID of the relay the script's drain started, while it runs. */
  relayPid(): number | undefined;
  /** Its log: the script's lines and PgBouncer's (stderr). */
  readonly logFile: string;
  /** Its own `applied` volume on this machine: the script's working files (generations, `failed`, the relay). */
  readonly appliedDir: string;
  /**
   * During a drain: the relay this container's script starts (`start_relay`) listens on the pod's port, as
   * its log says. Between PgBouncer closing its listener and then, a cancel forwarded here is refused.
   */
  relayListening(): boolean;
  /** The relay's log (PgBouncer's stderr) while this container runs; empty before the relay started. */
  relayLog(): string;
}

export interface FleetReplica {
  readonly ordinal: number;
  readonly name: string;
  readonly port: number;
  readonly processes: readonly FleetProcess[];
  /** Every process's readiness file exists (a pod is ready when all its containers are). */
  ready(): boolean;
  /** The balancer may send new connections here (the Service's endpoints). */
  readonly inService: boolean;
  /** Connections the balancer sent here. */
  readonly connections: number;
  /** When the preStop hook sent INT to this pod's containers (Date.now()); undefined before. */
  readonly signalledAt: number | undefined;
}

/** When a replacement's steps happened (Date.now()). */
export interface ReplaceTimes {
  readonly leftAt: number;
  readonly signalledAt: number;
  readonly stoppedAt: number;
  /** When it was ready again; undefined when it was not awaited (`awaitReady: false`). */
  readonly readyAt?: number;
}

export interface Fleet {
  readonly dir: string;
  /** The `pgbouncer` every container runs. */
  readonly pgbouncerBin: string;
  readonly settings: StackSettings;
  readonly world: TlsPostgres;
  readonly timings: ScriptTimings;
  readonly balancer: {
    readonly host: string;
    readonly port: number;
    /** Connections refused because no replica was ready and in service. */
    readonly refused: number;
    /** The replica an open connection was handed to, by the client's own port (undefined once it closed). */
    replicaOf(clientPort: number): number | undefined;
  };
  /** The application user through the balancer, verifying the pooler as a backend pod does. */
  readonly conn: Conn;
  /** The application user straight to PostgreSQL (TLS, verified). */
  readonly direct: Conn;
  replicas(): readonly FleetReplica[];
  replica(ordinal: number): FleetReplica;
  /**
   * The replicas' specs from the render input with `changes` (the current one otherwise), for `ordinals`
   * (every replica by default): what {@link updateMount} and {@link replace} take their new files from.
   */
  specs(changes?: Partial<RenderInput>, ordinals?: readonly number[]): ReplicaSpec[];
  /**
   * A live fleet's specs with `changes` to its live objects (a new ini, new volume files), for `ordinals`:
   * what {@link updateMount} takes a changed object's files from. A render's fleet refuses it.
   */
  liveSpecs(changes: Partial<LiveSource>, ordinals?: readonly number[]): ReplicaSpec[];
  /**
   * Replaces one volume's files on every replica the way the kubelet does (a new `..<ts>/`, `..data`
   * renamed over atomically), replica `ordinal` after `delayMs(ordinal)` (kubelets sync at different moments).
   * Resolves with each replica's swap time.
   */
  updateMount(
    volume: string,
    files: (ordinal: number) => MountFiles,
    opts?: { delayMs?: (ordinal: number) => number },
  ): Promise<Map<number, number>>;
  /**
   * Replaces a replica as a StatefulSet rolling update does: it leaves the balancer, the preStop hook sleeps
   * and sends INT to every container's script, the containers exit (TERM after the grace period), and the
   * pod starts again under its name, with `mounts` if given (the current files otherwise); resolves once
   * it is ready and back in the balancer, or, with `awaitReady: false`, once its containers are started
   * (the balancer takes it once it is ready, as the Service's endpoints do).
   */
  replace(
    ordinal: number,
    mounts?: Readonly<Record<string, MountFiles>>,
    opts?: { readonly awaitReady?: boolean },
  ): Promise<ReplaceTimes>;
  /** Adds or removes the highest replicas, then updates every replica's ini (`[peers]`). */
  scale(replicas: number): Promise<void>;
  /** libpq's environment for {@link conn}, as `export` lines. */
  exportLines(): string[];
  /** Every PID the fleet runs (PostgreSQL's, the scripts' and their children's). */
  pids(): number[];
  /** Stops the balancer, every replica (TERM twice: drain, then stop) and PostgreSQL; removes the dirs. */
  stop(): Promise<void>;
}

interface Container {
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly process: number;
  readonly socketDir: string;
  readonly logFile: string;
  child?: ChildProcess;
}

interface Replica {
  readonly ordinal: number;
  readonly name: string;
  readonly port: number;
  readonly dir: string;
  mounts: Map<string, KubeletTlsDir>;
  containers: Container[];
  inService: boolean;
  connections: number;
  /** When its containers got the preStop hook's INT (Date.now()), once they did. */
  signalledAt?: number;
}

/**
 * Every process's direct children, by parent PID, from one pass over /proc (no `children` file on every
 * kernel). One pass serves a whole tree; it is for lookups now and then (a container's processes while it
 * runs, cleanup), not for polling: a replica's stop watches its process groups instead.
 */
function processTree(): Map<number, number[]> {
  const tree = new Map<number, number[]>();
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const kids = tree.get(ppid);
      if (kids) kids.push(Number(e));
      else tree.set(ppid, [Number(e)]);
    } catch {
      // gone meanwhile
    }
  }
  return tree;
}

function descendants(pid: number, tree: ReadonlyMap<number, readonly number[]>): number[] {
  const kids = tree.get(pid) ?? [];
  return [...kids, ...kids.flatMap((k) => descendants(k, tree))];
}

/**
 * The processes of this fleet's containers still running, whatever their parent is now: each has
 * `PATH=<dir>/bin`, a folder of this fleet alone. A drain's relay (the pod script's `start_relay`) was found
 * listening after its fleet had stopped, six times in a day of full test runs on loaded cores: its script
 * had gone without stopping it, and it had left the script's tree before anyone looked.
 */
function leftOver(dir: string): number[] {
  const marker = Buffer.from(`\0PATH=${path.join(dir, "bin")}\0`);
  const out: number[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${e}/environ`)]);
      if (env.includes(marker)) out.push(Number(e));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); undefined once gone. */
export function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether process `pid` exists (a signal 0 reaches it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A container's own `applied` volume on the host (bind-mounted at the one path every container sees). */
const ownApplied = (c: { readonly socketDir: string; readonly process: number }) =>
  path.join(path.dirname(c.socketDir), "..", `applied-${c.process}`);

/** The PID of the child of a container's script whose command line names `ini`, while it runs. */
function childRunning(c: { readonly child?: ChildProcess }, ini: string): number | undefined {
  const script = c.child?.pid;
  if (script === undefined) return undefined;
  return (processTree().get(script) ?? []).find((kid) => {
    try {
      return fs.readFileSync(`/proc/${kid}/cmdline`, "utf8").includes(ini);
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** The log of the relay a container's drain started, empty if none did (or its pod started again since). */
function relayLogOf(c: { readonly socketDir: string; readonly process: number }): string {
  try {
    return fs.readFileSync(path.join(ownApplied(c), "relay", "relay.log"), "utf8");
  } catch {
    return "";
  }
}

function mkdirOwned(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const { uid, gid } = runAsIds();
  fs.chownSync(dir, uid, gid);
  return dir;
}

/** The PATH folder of every container: links to what the script's header names, and the two stand-ins. */
function containerPath(
  dir: string,
  canaryName: string,
  pgbouncerBin: string,
  canaryReadyFiles: readonly string[],
  canaryDown: string,
): string {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin, { mode: 0o755 });
  for (const c of SCRIPT_COMMANDS) {
    const target = [`/usr/bin/${c}`, `/bin/${c}`].find((f) => fs.existsSync(f));
    if (!target) throw new Error(`fleet: ${c}, which the pod script uses, is not installed`);
    fs.symlinkSync(target, path.join(bin, c));
  }
  fs.symlinkSync(runnableCopy(pgbouncerBin), path.join(bin, "pgbouncer"));
  // The cluster DNS as the canary's headless Service without publishNotReadyAddresses makes it: CoreDNS
  // answers its name only while pod 0 is ready (every container's readiness file) and not terminating.
  fs.writeFileSync(
    path.join(bin, "getent"),
    [
      "#!/bin/sh",
      "# fleet: getent as the cluster DNS answers for the canary's headless Service (ready pods only)",
      `[ "$1" = hosts ] && [ "$2" = "${canaryName}" ] || exit 2`,
      `[ -e "${canaryDown}" ] && exit 2`,
      ...canaryReadyFiles.map((f) => `[ -e "${f}" ] || exit 2`),
      `echo "127.0.0.1       ${canaryName}"`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  return bin;
}

/** Starts the fleet; on any failure everything started is stopped before the error goes on. */
export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const settings = opts.settings;
  const live = opts.live;
  const replicasWanted = live ? live.source.pods.length : settings.workload.replicas;
  const processes = live ? live.source.processesPerPod : settings.workload.processesPerPod;
  const timings: ScriptTimings = { ...FLEET_TIMINGS, ...opts.timings };
  const preStopMs = (opts.preStopDelaySeconds ?? settings.workload.preStopDelaySeconds) * 1000;
  const graceMs =
    (opts.terminationGracePeriodSeconds ?? settings.workload.terminationGracePeriodSeconds) * 1000;
  const log = opts.log ?? (() => undefined);
  const user = HARNESS_APP_USER;
  const appPassword = opts.appPassword ?? crypto.randomBytes(12).toString("hex");
  const statsPassword = opts.statsPassword ?? crypto.randomBytes(12).toString("hex");
  const secondUser = `${user}_b`;
  const secondPassword = opts.secondPassword ?? crypto.randomBytes(12).toString("hex");
  if (settings.credentials.authQuery) throw new Error("fleet: runs the file mode of prod and staging");
  const pgbouncerBin = opts.pgbouncerBin ?? pgbouncerBinary();
  // not binaryVersion: a blocking spawn would hold up the balancers of other fleets in this process
  const binVersion = await localPgBouncerVersion(pgbouncerBin).catch(() => undefined);
  if (binVersion !== settings.workload.version) {
    throw new Error(
      `fleet: pgbouncerBin ${pgbouncerBin} reports ${binVersion ? `PgBouncer ${binVersion}` : "no PgBouncer version"}; ` +
        `the ini is rendered for pgbouncer.version ${settings.workload.version}`,
    );
  }

  const world = await startTlsPostgres(
    "fleet-pki",
    {
      maxConnections: settings.database.maxConnections,
      hostsslOnly: true,
      ...(live?.postgresCa ? { postgresCa: live.postgresCa } : {}),
    },
    () => Promise.resolve({}),
  );
  const dir = makeRunDir("fleet");
  const replicas = new Map<number, Replica>();
  const key = {};
  const pids = (): number[] => {
    const scripts = [...replicas.values()]
      .flatMap((r) => r.containers.map((c) => c.child?.pid))
      .filter((p): p is number => p !== undefined && alive(p));
    const tree = processTree();
    const found = [...scripts, ...scripts.flatMap((p) => descendants(p, tree))];
    return [...found, ...leftOver(dir).filter((p) => !found.includes(p))];
  };
  track(key, pids, dir);
  let balancer: Balancer | undefined;

  try {
    const dbName = settings.database.name;
    const credentials = buildCredentials(
      settings.credentials,
      { statsUser: settings.exporter.statsUser, pgbouncerPort: settings.workload.port },
      {
        data: harnessVaultData(settings, {
          user,
          password: appPassword,
          statsPassword,
          secondUser,
          secondPassword,
        }),
      },
    );
    const pg = world.pg;
    if (live) {
      // The live auth file's logins, their passwords set the ordinary way (PostgreSQL salts them itself).
      for (const [name, password] of live.logins) {
        await pg.psql(`CREATE ROLE "${name}" LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
      }
      await pg.psql(`CREATE DATABASE "${dbName}" OWNER "${[...live.logins.keys()][0]}"`);
    } else {
      const logins = [[user, appPassword]];
      if (settings.credentials.secondLogin) logins.push([secondUser, secondPassword]);
      for (const [name, password] of logins) {
        await pg.psql(
          `CREATE ROLE "${name}" LOGIN ${postgresPasswordSql(settings, credentials.authFile, name, password)}`,
        );
      }
      await pg.psql(`CREATE DATABASE "${dbName}" OWNER "${user}"`);
    }

    // Ports: a replica's port is its pod's address; a replaced replica keeps it, as its DNS name is kept.
    const ports: number[] = [];
    const portOf = async (ordinal: number) => {
      while (ports.length <= ordinal) ports.push(await freePort());
      return ports[ordinal];
    };
    for (let o = 0; o < replicasWanted; o++) await portOf(o);
    const podDir = (o: number) => path.join(dir, `pgbouncer-${o}`);
    const places: FleetPlaces = {
      current: path.join(dir, "applied", "current"),
      mountDir: (o, v) => path.join(podDir(o), "mounts", v),
      socketDir: (o, p) => path.join(podDir(o), "run", String(p)),
      port: (o) => {
        if (ports[o] === undefined) throw new Error(`fleet: no port for replica ${o} yet`);
        return ports[o];
      },
    };
    mkdirOwned(path.dirname(places.current));
    const canaryDown = path.join(podDir(0), "terminating");
    let renderInput: RenderInput = {
      settings,
      replicas: replicasWanted,
      processes,
      authFile: credentials.authFile,
      iniAuth: credentials.iniAuth,
      serverLoginChecks: credentials.serverLoginChecks,
      tls: {
        cert: world.poolerCert.certPem,
        key: fs.readFileSync(world.poolerCert.keyFile, "utf8"),
        serverCa: world.postgresCa.certPem,
      },
      postgres: { host: pg.host, port: pg.port },
      canary: opts.canary !== false,
      timings,
      peers: opts.peers ?? "fleet",
    };
    const liveSource = live?.source;
    const all = (n: number) => Array.from({ length: n }, (_, o) => o);
    const liveSpecs = (changes: Partial<LiveSource>, ordinals?: readonly number[]) => {
      if (!liveSource) throw new Error("fleet: this fleet runs the render, not live objects");
      const source = { ...liveSource, ...changes };
      return specsFromLive(source, places, ordinals ?? all(source.pods.length), {
        host: pg.host,
        port: pg.port,
      });
    };
    const specs = (changes: Partial<RenderInput> = {}, ordinals?: readonly number[]) => {
      if (liveSource) {
        if (Object.keys(changes).length > 0) throw new Error("fleet: a live fleet takes live changes only");
        return liveSpecs({}, ordinals);
      }
      const input = { ...renderInput, ...changes };
      return specsFromRender(input, places, ordinals ?? all(input.replicas));
    };
    // Every script is told the same canary (the pod template's); the cluster DNS stand-in answers it.
    const canaryName = specs({}, [0])[0].processes[0]?.env.PGBOUNCER_CANARY ?? "";
    const bin = containerPath(
      dir,
      canaryName,
      pgbouncerBin,
      Array.from({ length: processes }, (_, i) => readyFile(places.socketDir(0, i + 1))),
      canaryDown,
    );
    /** The files each replica has mounted now, by volume. */
    const mounted = new Map<number, Map<string, MountFiles>>();

    let stopped = false;
    /** Replacements and scalings under way: stop() waits for them, so that none starts a replica after it. */
    const inFlight = new Set<Promise<unknown>>();
    const op = <T>(p: Promise<T>): Promise<T> => {
      inFlight.add(p);
      const done = () => inFlight.delete(p);
      p.then(done, done);
      return p;
    };

    const launch = (c: Container): void => {
      if (stopped) throw new Error("fleet: stopped; no container starts after stop()");
      // Its own `applied` volume at the shared path, in a mount namespace of its own; then the script, as
      // `postgres`, with the pod's environment and nothing else.
      const own = mkdirOwned(ownApplied(c));
      fs.rmSync(own, { recursive: true, force: true });
      mkdirOwned(own);
      const wrap =
        'own=$1 at=$2; shift 2; /usr/bin/mount --bind "$own" "$at" || exit 1; ' +
        `exec /usr/bin/setpriv --reuid=${RUN_AS} --regid=${RUN_AS} --init-groups -- "$@"`;
      const fd = fs.openSync(c.logFile, "a");
      try {
        c.child = spawn(
          "/usr/bin/unshare",
          [
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            wrap,
            "fleet-container",
            own,
            path.dirname(places.current),
            ...c.command,
          ],
          // a process group of its own, which every process the script starts stays in: what is left of the
          // container once its script has gone is one kill(-pgid, 0) away, where a scan of /proc every 50 ms
          // was the largest item of the test workers' CPU profile (docs/testing.md)
          { env: { PATH: bin, ...c.env }, stdio: ["ignore", fd, fd], detached: true },
        );
      } finally {
        fs.closeSync(fd);
      }
    };

    const readyOf = (r: Replica) => r.containers.every((c) => fs.existsSync(readyFile(c.socketDir)));
    /** Tells the balancer the Service's endpoints after a replica went in or out of service. */
    const publish = () =>
      balancer?.setEndpoints(
        [...replicas.values()].map((r) => ({
          ordinal: r.ordinal,
          port: r.port,
          inService: r.inService,
          readyFiles: r.containers.map((c) => readyFile(c.socketDir)),
        })),
      );

    const startReplica = async (spec: ReplicaSpec, ordinal: number, awaitReady = true): Promise<Replica> => {
      const rdir = podDir(ordinal);
      fs.rmSync(rdir, { recursive: true, force: true });
      mkdirOwned(rdir);
      const mounts = new Map<string, KubeletTlsDir>();
      const files = new Map<string, MountFiles>();
      for (const [volume, content] of Object.entries(spec.mounts)) {
        mounts.set(volume, kubeletTlsDir(mkdirOwned(places.mountDir(ordinal, volume)), content));
        files.set(volume, content);
      }
      mounted.set(ordinal, files);
      fs.mkdirSync(path.join(rdir, "logs"));
      const containers = spec.processes.map((c): Container => {
        mkdirOwned(c.socketDir);
        return {
          command: c.command,
          env: c.env,
          process: c.process,
          socketDir: c.socketDir,
          logFile: path.join(rdir, "logs", `pgbouncer-${c.process}.log`),
        };
      });
      const r: Replica = {
        ordinal,
        name: spec.podName,
        port: await portOf(ordinal),
        dir: rdir,
        mounts,
        containers,
        inService: false,
        connections: 0,
      };
      replicas.set(ordinal, r);
      for (const c of containers) launch(c);
      if (!awaitReady) {
        // the balancer sends connections only to ready replicas
        r.inService = true;
        log(`fleet: ${r.name} started on 127.0.0.1:${r.port}, its readiness not awaited`);
        return r;
      }
      await untilReady(r);
      r.inService = true;
      publish();
      log(`fleet: ${r.name} ready on 127.0.0.1:${r.port}`);
      return r;
    };

    const untilReady = async (r: Replica, maxMs = 30_000): Promise<void> => {
      const started = Date.now();
      while (!readyOf(r)) {
        const dead = r.containers.find((c) => c.child && (c.child.exitCode !== null || c.child.signalCode));
        if (dead) {
          throw new Error(`fleet: ${r.name} process ${dead.process} exited at start:\n${tail(dead.logFile)}`);
        }
        if (Date.now() - started > maxMs) {
          throw new Error(
            `fleet: ${r.name} not ready within ${maxMs / 1000} s:\n` +
              r.containers.map((c) => tail(c.logFile)).join("\n"),
          );
        }
        await sleep(50);
      }
    };

    /**
     * Waits for every container of `r` to exit (TERM past `maxMs`, then KILL), and for every process it
     * started (PgBouncer, the relay, a validation), which its process group holds: killed 5 s after the script,
     * as a container's end would take them all with it.
     */
    const untilStopped = async (r: Replica, maxMs: number): Promise<void> => {
      // each container's process group (launch): its script's PID
      const groups = r.containers.flatMap((c) => (c.child?.pid !== undefined ? [c.child.pid] : []));
      const left = () => groups.filter((g) => alive(-g));
      const done = Promise.all(r.containers.map((c) => (c.child ? exited(c.child) : Promise.resolve())));
      let finished = false;
      void done.then(() => (finished = true));
      const started = Date.now();
      let termed = false;
      while (!finished) {
        const waited = Date.now() - started;
        if (waited > maxMs && !termed) {
          termed = true;
          for (const c of r.containers) signal(c.child?.pid, "SIGTERM");
        }
        if (waited > maxMs + 5000) {
          for (const g of groups) signal(-g, "SIGKILL");
          await within(done, 5000);
          break;
        }
        await sleep(50);
      }
      const t0 = Date.now();
      while (left().length > 0 && Date.now() - t0 < 5000) await sleep(50);
      for (const g of left()) signal(-g, "SIGKILL");
    };

    const terminate = async (r: Replica): Promise<{ signalledAt: number; stoppedAt: number }> => {
      r.inService = false;
      publish();
      if (r.ordinal === 0) fs.writeFileSync(canaryDown, "");
      await sleep(preStopMs);
      const signalledAt = Date.now();
      for (const c of r.containers) signal(c.child?.pid, "SIGINT");
      r.signalledAt = signalledAt;
      await untilStopped(r, Math.max(graceMs - preStopMs, 1000));
      if (r.ordinal === 0) fs.rmSync(canaryDown, { force: true });
      return { signalledAt, stoppedAt: Date.now() };
    };

    // --- the balancer: kube-proxy's pick of a ready endpoint, per new connection ---
    const lb = await startBalancer((ordinal) => {
      const r = replicas.get(ordinal);
      if (r) r.connections++;
    });
    balancer = lb;
    const balancerPort = lb.port;

    const first = specs();
    await Promise.all(first.map((s, o) => startReplica(s, o)));

    // What a backend pod verifies the pooler with: the live CA under the Service's name, or the fleet's own.
    const client = live
      ? (() => {
          const rootCertFile = path.join(dir, "pooler-ca.crt");
          fs.writeFileSync(rootCertFile, live.client.rootCaPem, { mode: 0o644 });
          return { ...live.client, rootCertFile };
        })()
      : { user, password: appPassword, rootCertFile: world.poolerCa.certFile, hostname: LOCAL_NAME };
    const conn: Conn = {
      host: "127.0.0.1",
      port: balancerPort,
      user: client.user,
      database: dbName,
      password: client.password,
      tls: { sslmode: "verify-full", rootCertFile: client.rootCertFile, hostname: client.hostname },
    };
    const direct: Conn = {
      host: pg.host,
      port: pg.port,
      user: client.user,
      database: dbName,
      password: client.password,
      tls: { sslmode: "verify-full", rootCertFile: world.postgresCa.certFile, hostname: LOCAL_NAME },
    };

    const view = (r: Replica): FleetReplica => ({
      ordinal: r.ordinal,
      name: r.name,
      port: r.port,
      processes: r.containers.map((c) => ({
        process: c.process,
        socketDir: c.socketDir,
        podName: r.name,
        logFile: c.logFile,
        appliedDir: ownApplied(c),
        pid: () => c.child?.pid,
        pgbouncerPid: () => childRunning(c, `/pgbouncer-${c.process}.ini`),
        relayPid: () => childRunning(c, "/relay/relay.ini"),
        relayLog: () => relayLogOf(c),
        relayListening: () => /LOG listening on 127\.0\.0\.1:/.test(relayLogOf(c)),
      })),
      ready: () => readyOf(r),
      get inService() {
        return r.inService;
      },
      get connections() {
        return r.connections;
      },
      get signalledAt() {
        return r.signalledAt;
      },
    });

    const updateMount: Fleet["updateMount"] = async (volume, files, o = {}) => {
      const at = new Map<number, number>();
      await Promise.all(
        [...replicas.values()].map(async (r) => {
          await sleep(o.delayMs?.(r.ordinal) ?? 0);
          const m = r.mounts.get(volume);
          if (!m) throw new Error(`fleet: ${r.name} mounts no volume ${volume}`);
          const f = files(r.ordinal);
          at.set(r.ordinal, m.update(f));
          mounted.get(r.ordinal)?.set(volume, f);
        }),
      );
      return at;
    };

    const replace = async (
      ordinal: number,
      mounts?: Readonly<Record<string, MountFiles>>,
      opts: { readonly awaitReady?: boolean } = {},
    ): Promise<ReplaceTimes> => {
      const r = replicas.get(ordinal);
      if (!r) throw new Error(`fleet: no replica ${ordinal}`);
      const leftAt = Date.now();
      log(`fleet: replacing ${r.name}: out of the balancer, preStop sleeps ${preStopMs / 1000} s`);
      const { signalledAt, stoppedAt } = await terminate(r);
      const now = mounted.get(ordinal) ?? new Map<string, MountFiles>();
      const spec = specs({}, [ordinal])[0];
      const files = Object.fromEntries(
        Object.keys(spec.mounts).map((v) => [v, mounts?.[v] ?? now.get(v) ?? spec.mounts[v]]),
      );
      const awaitReady = opts.awaitReady ?? true;
      await startReplica({ ...spec, mounts: files }, ordinal, awaitReady);
      return { leftAt, signalledAt, stoppedAt, ...(awaitReady ? { readyAt: Date.now() } : {}) };
    };
    const scale = async (n: number): Promise<void> => {
      if (liveSource) throw new Error("fleet: a live fleet has the live pods; it does not scale");
      const before = renderInput.replicas;
      // a new replica's port (its pod's address) goes into every [peers]
      for (let o = before; o < n; o++) await portOf(o);
      renderInput = { ...renderInput, replicas: n };
      const all = specs();
      if (n > before) {
        await Promise.all(specs({}, range(before, n)).map((s, i) => startReplica(s, before + i)));
      } else {
        for (let o = before - 1; o >= n; o--) {
          const r = replicas.get(o);
          if (!r) continue;
          await terminate(r);
          replicas.delete(o);
          publish();
          mounted.delete(o);
        }
      }
      await updateMount("config", (o) => all[o].mounts.config);
    };

    const fleet: Fleet = {
      dir,
      pgbouncerBin,
      settings,
      world,
      timings,
      balancer: {
        host: "127.0.0.1",
        port: balancerPort,
        get refused() {
          return lb.refused;
        },
        replicaOf: (p) => lb.replicaOf(p),
      },
      conn,
      direct,
      replicas: () => [...replicas.values()].sort((a, b) => a.ordinal - b.ordinal).map(view),
      replica: (o) => {
        const r = replicas.get(o);
        if (!r) throw new Error(`fleet: no replica ${o}`);
        return view(r);
      },
      specs,
      liveSpecs,
      updateMount,
      replace: (ordinal, mounts, o) => op(replace(ordinal, mounts, o)),
      scale: (n) => op(scale(n)),
      exportLines: () => [
        `export PGHOST=${client.hostname}`,
        "export PGHOSTADDR=127.0.0.1",
        `export PGPORT=${balancerPort}`,
        "export PGSSLMODE=verify-full",
        `export PGSSLROOTCERT=${client.rootCertFile}`,
        `export PGUSER=${client.user}`,
        `export PGPASSWORD=${client.password}`,
        `export PGDATABASE=${dbName}`,
      ],
      pids: () => [...pids(), ...(pg.pid() !== undefined ? [pg.pid() as number] : [])],
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          lb.close();
          await Promise.allSettled([...inFlight]);
          await lb.end();
          await Promise.all(
            [...replicas.values()].map(async (r) => {
              r.inService = false;
              // TERM starts a drain; the second TERM stops PgBouncer at once
              for (const c of r.containers) signal(c.child?.pid, "SIGTERM");
              await sleep(200);
              for (const c of r.containers) signal(c.child?.pid, "SIGTERM");
              await untilStopped(r, 10_000);
            }),
          );
        } finally {
          const left = leftOver(dir);
          if (left.length > 0)
            log(`fleet: killing ${left.length} processes left over (PIDs ${left.join(" ")})`);
          for (const p of left) signal(p, "SIGKILL");
          untrack(key);
          fs.rmSync(dir, { recursive: true, force: true });
          await world.stop();
        }
      },
    };
    return fleet;
  } catch (e) {
    await balancer?.end();
    for (const p of pids()) signal(p, "SIGKILL");
    untrack(key);
    fs.rmSync(dir, { recursive: true, force: true });
    await world.stop();
    throw e;
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
