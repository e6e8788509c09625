/**
 * The bridge from the API server to the real binaries: kwok mounts no volume and starts no container, so what
 * the pods would run is taken from the API server after `pulumi up` and run on the local fleet
 * (tools/fleet/): the live ConfigMap's `pgbouncer.ini`, the live Secrets' and ConfigMaps' files as the live
 * pod template's volumes lay them out (the auth file; the certificate, its key and PostgreSQL's CA), and the
 * live template's PgBouncer containers (their command, the pod script's text, and their environment, with
 * each live pod's name), on PgBouncer 1.25.2 in front of a TLS-only PostgreSQL 15 that has both application
 * logins. Only addresses, ports and folders are rewritten, each checked (tools/fleet/live.ts). A change the
 * scenario makes reaches it as the kubelet would bring it: the changed object's files swapped in atomically
 * ({@link LiveFleet.sync}).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { CURRENT_DIR, INI_FILE, POD_PATHS } from "../../../../components/pgbouncer";
import { type Fleet, startFleet } from "../../../fleet/fleet";
import { configValue } from "../../../fleet/load";
import type { LiveSource } from "../../../fleet/live";
import type { ContainerLike, MountFiles } from "../../../fleet/render";
import { type Conn, PgClient } from "../../../harness";
import { sleep } from "../../../harness/proc";
import { type KubeObject, getJson } from "../../clients/kubectl";
import { APP_USERS, appLogins, appPassword, postgresTestCa } from "../../fixtures";
import { type LivePod, livePods } from "./fleet-identity";
import { type StackRun, measuredBy, statefulSet } from "./stack-run";

/** A pod template's volume, as far as the bridge reads it. */
interface VolumeLike {
  readonly name: string;
  readonly configMap?: { readonly name: string; readonly items?: readonly KeyPath[] };
  readonly secret?: { readonly secretName: string; readonly items?: readonly KeyPath[] };
  readonly projected?: {
    readonly sources: readonly {
      readonly configMap?: { readonly name: string; readonly items?: readonly KeyPath[] };
      readonly secret?: { readonly name: string; readonly items?: readonly KeyPath[] };
    }[];
  };
}
interface KeyPath {
  readonly key: string;
  readonly path: string;
}

type DataObject = KubeObject & { data?: Record<string, string> };

/** A ConfigMap's or Secret's data as text (a Secret's is base64). */
async function objectData(
  r: StackRun,
  kind: "configmap" | "secret",
  name: string,
): Promise<Record<string, string>> {
  const o = await getJson<DataObject>(r.k, [kind, name, "-n", r.ns]);
  const data = o.data ?? {};
  return kind === "secret"
    ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]))
    : data;
}

/** What the kubelet writes into a volume from `data`: every key as its name, or the items' paths. */
function project(
  data: Record<string, string>,
  items: readonly KeyPath[] | undefined,
  what: string,
): MountFiles {
  if (!items) return data;
  return Object.fromEntries(
    items.map((i) => {
      assert.ok(i.key in data, `${what} has the key ${i.key} the volume projects`);
      return [i.path, data[i.key]];
    }),
  );
}

/** The files of a live volume, read from the live objects it names (configMap, secret or projected). */
export async function liveVolumeFiles(r: StackRun, v: VolumeLike): Promise<MountFiles> {
  if (v.configMap)
    return project(await objectData(r, "configmap", v.configMap.name), v.configMap.items, v.configMap.name);
  if (v.secret)
    return project(await objectData(r, "secret", v.secret.secretName), v.secret.items, v.secret.secretName);
  if (v.projected) {
    const files: Record<string, string> = {};
    for (const src of v.projected.sources) {
      const part = src.configMap
        ? project(
            await objectData(r, "configmap", src.configMap.name),
            src.configMap.items,
            src.configMap.name,
          )
        : src.secret
          ? project(await objectData(r, "secret", src.secret.name), src.secret.items, src.secret.name)
          : assert.fail(`volume ${v.name}: a projected source the bridge does not read`);
      Object.assign(files, part);
    }
    return files;
  }
  return assert.fail(`volume ${v.name} is no ConfigMap, Secret or projected volume`);
}

export interface LiveFleet {
  readonly fleet: Fleet;
  /** The live pods the fleet's replicas are named after. */
  readonly pods: readonly LivePod[];
  /** The live `[peers]` as the ConfigMap holds it (before any rewrite): peer id -> `host=… port=…`. */
  readonly livePeers: ReadonlyMap<string, string>;
  /** The script's timings as the live template gives them, in seconds. */
  readonly timings: { readonly check: number; readonly hold: number };
  /**
   * Reads every volume the scripts watch from the API server again and swaps in, on every replica, those
   * whose files changed (the kubelet's atomic swap); resolves with the volumes swapped, sorted.
   */
  sync(): Promise<string[]>;
  /** Each process's count of `applied generation` in its log, replica by replica. */
  applied(): number[];
  /**
   * Waits until every process applied a generation more than `before`: resolves with the seconds from
   * `since` until the canary's processes had, and until every process had.
   */
  untilApplied(before: readonly number[], since: number): Promise<{ canary: number; all: number }>;
  /** A connection to replica `ordinal` (or through the balancer), as `user` with `password`, verify-full. */
  conn(user: string, password: string, ordinal?: number): Conn;
  /** One SHOW CONFIG value of every process, replica by replica (the admin console over its socket). */
  config(key: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** The live fleet of each stack's run, from the step live-objects-serve until the run ends. */
const running = new WeakMap<StackRun, LiveFleet>();

/** The live fleet the step live-objects-serve started for `r`. */
export function liveFleetOf(r: StackRun): LiveFleet {
  return measuredBy(running.get(r), "live-objects-serve");
}

/** Stops `r`'s live fleet, if one runs. */
export async function stopLiveFleet(r: StackRun): Promise<void> {
  const live = running.get(r);
  running.delete(r);
  await live?.stop();
}

/**
 * The live objects on the real binaries; the fleet is started, every replica ready, and kept as `r`'s until
 * {@link stopLiveFleet}.
 */
export async function startLiveFleet(r: StackRun): Promise<LiveFleet> {
  const live = await startFleetOfLiveObjects(r);
  running.set(r, live);
  return live;
}

async function startFleetOfLiveObjects(r: StackRun): Promise<LiveFleet> {
  const st = await statefulSet(r);
  const pods = await livePods(r, st);
  const spec = st.spec.template.spec as { containers: ContainerLike[]; volumes: VolumeLike[] };
  const scripts = spec.containers.filter((c) => c.env?.some((e) => e.name === "PGBOUNCER_PROCESS"));
  const env = (name: string) => {
    const v = scripts[0]?.env?.find((e) => e.name === name)?.value;
    assert.ok(typeof v === "string", `the live template's script has ${name}`);
    return v;
  };
  // The volumes the scripts watch, by their mount paths (PGBOUNCER_SOURCES), and the one with the ini.
  const mounts = new Map(
    ((scripts[0] as { volumeMounts?: { name: string; mountPath: string }[] }).volumeMounts ?? []).map((m) => [
      m.mountPath,
      m.name,
    ]),
  );
  const watched = env("PGBOUNCER_SOURCES")
    .split(" ")
    .map((dir) => {
      const name = mounts.get(dir);
      const v = spec.volumes.find((x) => x.name === name);
      assert.ok(v, `the live template mounts a volume at ${dir}`);
      return v;
    });
  const read = async () =>
    new Map(await Promise.all(watched.map(async (v) => [v.name, await liveVolumeFiles(r, v)] as const)));
  const files = await read();
  const configVolume = [...files].find(([, f]) => INI_FILE in f)?.[0];
  assert.ok(configVolume, `a watched volume holds ${INI_FILE}`);
  const ini = files.get(configVolume)?.[INI_FILE] ?? "";
  const port = Number(env("PGBOUNCER_PORT"));
  assert.equal(env("PGBOUNCER_CURRENT"), CURRENT_DIR, "the script's generation folder is the ini's");
  assert.ok(env("PGBOUNCER_SOURCES").split(" ").includes(POD_PATHS.configDir));

  const others = (m: Map<string, MountFiles>) =>
    Object.fromEntries([...m].filter(([v]) => v !== configVolume));
  const source: LiveSource = {
    pods: pods.map((p) => ({ ordinal: p.ordinal, name: p.name, dnsName: p.dnsName })),
    ini,
    configVolume,
    volumeFiles: others(files),
    containers: spec.containers,
    processesPerPod: scripts.length,
    database: { host: r.s.database.host, port: r.s.database.port },
    podPort: port,
  };
  // PostgreSQL's certificate is signed by the CA the live volume gives PgBouncer, when there is one: the
  // e2e's postgres-ca (its key is the e2e's), checked byte for byte.
  const ca = r.s.tls.serverCa;
  let postgresCa;
  if (ca?.source === "configmap") {
    postgresCa = postgresTestCa();
    const pem = postgresCa.certPem;
    const mounted = [...files.values()].flatMap((f) => Object.values(f)).filter((t) => t === pem);
    assert.equal(
      mounted.length,
      1,
      "the live tls volume holds PostgreSQL's CA, the postgres-ca the bridge signs with",
    );
  }
  // The client is a backend pod: it verifies the pooler with the stack outputs' CA (caRef) under dbHost.
  const out = await r.pulumi.outputs();
  const caRef = out.caRef as { kind: string; name: string; key: string };
  const caData = await objectData(r, caRef.kind === "Secret" ? "secret" : "configmap", caRef.name);
  const current = r.logins.current;
  const fleet = await startFleet({
    settings: r.s,
    live: {
      source,
      ...(postgresCa ? { postgresCa } : {}),
      logins: appLogins(r.s, r.logins),
      client: {
        user: APP_USERS[current],
        password: appPassword(current, r.logins[current]),
        rootCaPem: caData[caRef.key] ?? assert.fail(`${caRef.name} has no ${caRef.key}`),
        hostname: String(out.dbHost),
      },
    },
    log: (line) => r.log(`  ${line}`),
  });

  let mounted = files;
  const applied = () =>
    fleet
      .replicas()
      .flatMap((x) =>
        x.processes.map(
          (p) => (fs.readFileSync(p.logFile, "utf8").match(/applied generation \d+/g) ?? []).length,
        ),
      );
  const timings = {
    check: Number(env("PGBOUNCER_CHECK_SECONDS")),
    hold: Number(env("PGBOUNCER_CANARY_HOLD_SECONDS")),
  };
  const live: LiveFleet = {
    fleet,
    pods,
    livePeers: iniSection(ini, "peers"),
    timings,
    async sync() {
      const now = await read();
      const changed = [...now.keys()].filter(
        (v) => JSON.stringify(now.get(v)) !== JSON.stringify(mounted.get(v)),
      );
      for (const v of changed) {
        if (v === configVolume) {
          const specs = fleet.liveSpecs({ ini: now.get(v)?.[INI_FILE] ?? "", volumeFiles: others(now) });
          await fleet.updateMount(v, (o) => specs[o].mounts[v]);
        } else {
          const f = now.get(v) ?? {};
          await fleet.updateMount(v, () => f);
        }
      }
      mounted = now;
      return changed.sort();
    },
    applied,
    async untilApplied(before, since) {
      // The kubelet's swap is immediate here: a check, the hold behind the canary, a check, and the
      // validation's server logins, with slack for two busy cores.
      const boundMs = (timings.check * 2 + timings.hold + 40) * 1000;
      const canaryProcesses = fleet.replica(0).processes.length;
      let canary: number | undefined;
      for (;;) {
        const now = applied();
        const done = now.map((n, i) => n > before[i]);
        if (canary === undefined && done.slice(0, canaryProcesses).every(Boolean))
          canary = (Date.now() - since) / 1000;
        if (done.every(Boolean)) return { canary: canary ?? 0, all: (Date.now() - since) / 1000 };
        if (Date.now() - since > boundMs) {
          throw new Error(
            `the change was not applied everywhere within ${boundMs / 1000} s: ${now.join()} vs ${before.join()}`,
          );
        }
        await sleep(250);
      }
    },
    conn(user, password, ordinal) {
      return {
        ...fleet.conn,
        user,
        password,
        ...(ordinal === undefined ? {} : { port: fleet.replica(ordinal).port }),
      };
    },
    async config(key) {
      const out: string[] = [];
      for (const x of fleet.replicas())
        for (const p of x.processes) out.push(await configValue(p.socketDir, x.port, key));
      return out;
    },
    stop: () => fleet.stop(),
  };
  return live;
}

/** One section of an ini's text: key -> value, as written. */
function iniSection(ini: string, section: string): Map<string, string> {
  const out = new Map<string, string>();
  let at = "";
  for (const line of ini.split("\n")) {
    const t = line.trim();
    const h = /^\[(.+)\]$/.exec(t);
    if (h) at = h[1];
    else if (at === section && /^[^;#].*=/.test(t))
      out.set(t.slice(0, t.indexOf("=")).trim(), t.slice(t.indexOf("=") + 1).trim());
  }
  return out;
}

/** Logs in and asks who it is; resolves with the user, or the refusal's message. */
export async function whoAmI(conn: Conn): Promise<{ user?: string; error?: string; serial?: string }> {
  try {
    const c = await PgClient.connect(conn, { applicationName: "e2e-bridge", timeoutMs: 15_000 });
    try {
      const rows = await c.records("SELECT current_user AS u");
      return { user: rows[0]?.u, serial: c.peerCertificate?.serialNumber };
    } finally {
      c.close();
    }
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}
