/**
 * The local world the e2e runs in: etcd, kube-apiserver (Pod Security admission on), kube-controller-manager,
 * kube-scheduler, kwok with three fake nodes, and an OpenBao dev server, all on free ports of 127.0.0.1 and
 * run as an unprivileged user when started as root. Every PID is tracked: `stop()` ends them in reverse
 * order, and a crash or Ctrl-C kills them from the exit hook. An existing cluster (`KUBECONFIG`) or Vault
 * (`VAULT_ADDR` + `VAULT_TOKEN`) is used instead of the local one when the environment names it.
 *
 * Other scenarios reuse it: `startWorld()` gives the kubeconfig, the Vault address and token, a `kubectl`
 * helper and `stop()`.
 */
import { execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, runAsIds, signal, sleep, track, untrack } from "../harness/proc";
import {
  type Kubectl,
  type KubectlRaw,
  asList,
  exists,
  getJson,
  kubectlOk,
  kubectlRaw,
  waitFor,
} from "./kube";
import type { Toolchain } from "./toolchain";

/** The fake nodes kwok manages (this annotation selects them). */
export const FAKE_NODE_ANNOTATION = { key: "kwok.x-k8s.io/node", value: "fake" };
export const NODE_NAMES = ["kwok-node-0", "kwok-node-1", "kwok-node-2"];

export interface World {
  /** Scratch folder of this world (logs, certificates, state of the scenario); removed by `stop()`. */
  readonly dir: string;
  readonly kubeconfig: string;
  readonly vaultAddr: string;
  readonly vaultToken: string;
  /** Environment a client of this world needs (PATH with the toolchain, KUBECONFIG, VAULT_*). */
  readonly env: Readonly<Record<string, string>>;
  readonly kubectl: Kubectl;
  readonly kubectlRaw: KubectlRaw;
  /** True for the parts this run started (false: taken from KUBECONFIG / VAULT_ADDR). */
  readonly local: { readonly kube: boolean; readonly vault: boolean };
  /** Stops every process this world started (reverse order) and removes `dir`. */
  stop(): Promise<void>;
  /** Leaves the processes running; writes the state file `--down` reads. */
  keep(stateFile: string): KeptWorld;
}

/** What `--keep` leaves and `--down` stops. */
export interface KeptWorld {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly vaultAddr: string;
  readonly vaultToken: string;
  readonly processes: readonly { readonly name: string; readonly pid: number; readonly exe: string }[];
}

export interface WorldOptions {
  readonly tools: Toolchain;
  readonly log: (line: string) => void;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly exe: string;
  readonly exited: Promise<void>;
}

/** Starts (or attaches to) the cluster and Vault; on any failure stops what it started and rethrows. */
export async function startWorld(opts: WorldOptions): Promise<World> {
  const env = opts.env ?? process.env;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-e2e-"));
  fs.chmodSync(dir, 0o755);
  const procs: Proc[] = [];
  const key = {};
  track(key, () => procs.map((p) => p.pid), dir);
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? runAsIds() : undefined;
  if (ids) fs.chownSync(dir, ids.uid, ids.gid);
  const started = Date.now();

  const stop = async (): Promise<void> => {
    for (const p of [...procs].reverse()) {
      signal(p.pid, "SIGTERM");
      if (!(await settled(p.exited, 10_000))) signal(p.pid, "SIGKILL");
      await settled(p.exited, 5_000);
    }
    procs.length = 0;
    untrack(key);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  // Binaries under /root are out of reach of the unprivileged user: hard-link (or copy) them into the run dir.
  const serverBin = (name: string): string => {
    const src = fs.realpathSync(opts.tools.bin(name));
    if (!asRoot) return src;
    const dst = path.join(dir, "bin", name);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    try {
      fs.linkSync(src, dst);
    } catch {
      fs.copyFileSync(src, dst);
      fs.chmodSync(dst, 0o755);
    }
    return dst;
  };

  const start = (name: string, exe: string, args: readonly string[]): Proc => {
    const logFile = path.join(dir, "logs", `${name}.log`);
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const fd = fs.openSync(logFile, "a");
    try {
      const child = spawn(exe, [...args], {
        stdio: ["ignore", fd, fd],
        detached: true, // own process group: Ctrl-C reaches us, and we stop the servers in order
        env: { PATH: opts.tools.path, HOME: dir },
        ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
      });
      if (child.pid === undefined) throw new Error(`e2e: could not start ${name}`);
      child.unref();
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      const proc = { name, pid: child.pid, exe, exited };
      procs.push(proc);
      opts.log(`world: started ${name} (pid ${child.pid}, log ${logFile})`);
      return proc;
    } finally {
      fs.closeSync(fd);
    }
  };

  /** Fails fast, with the tail of its log, when a server dies while we wait on it. */
  const alive = (p: Proc) => async () => {
    if (!(await settled(p.exited, 0))) return;
    const log = fs
      .readFileSync(path.join(dir, "logs", `${p.name}.log`), "utf8")
      .split("\n")
      .slice(-25)
      .join("\n");
    throw new Error(`e2e: ${p.name} exited during start-up; last lines of its log:\n${log}`);
  };

  try {
    const useKube = env.KUBECONFIG !== undefined && env.KUBECONFIG !== "";
    const useVault = Boolean(env.VAULT_ADDR && env.VAULT_TOKEN);
    const kubeconfig = useKube ? String(env.KUBECONFIG) : path.join(dir, "admin.kubeconfig");
    if (useKube) opts.log(`world: using the cluster of KUBECONFIG=${kubeconfig}`);
    else await startControlPlane({ dir, serverBin, start, alive, log: opts.log, kubeconfig });
    const raw = kubectlRaw(opts.tools.bin("kubectl"), kubeconfig, { PATH: opts.tools.path });
    const kubectl = kubectlOk(raw);
    if (!useKube)
      await startKwok({ dir, serverBin, start, alive, kubectl, raw, stages: opts.tools.kwokStages });
    await installCrds(kubectl, opts.tools.crds);

    let vaultAddr: string;
    let vaultToken: string;
    if (useVault) {
      vaultAddr = String(env.VAULT_ADDR);
      vaultToken = String(env.VAULT_TOKEN);
      opts.log(`world: using the Vault of VAULT_ADDR=${vaultAddr}`);
    } else {
      const port = await freePort();
      vaultToken = `e2e-${crypto.randomBytes(12).toString("hex")}`;
      vaultAddr = `http://127.0.0.1:${port}`;
      const bao = start("openbao", serverBin("bao"), [
        "server",
        "-dev",
        `-dev-root-token-id=${vaultToken}`,
        `-dev-listen-address=127.0.0.1:${port}`,
      ]);
      await waitFor("OpenBao to unseal", async () => {
        await alive(bao)();
        const r = await fetch(`${vaultAddr}/v1/sys/health`);
        return r.status === 200 ? true : undefined;
      });
    }
    opts.log(`world: ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (asRoot) execFileSync("chown", ["-R", `${ids?.uid}:${ids?.gid}`, path.join(dir, "logs")]);

    return {
      dir,
      kubeconfig,
      vaultAddr,
      vaultToken,
      env: { PATH: opts.tools.path, KUBECONFIG: kubeconfig, VAULT_ADDR: vaultAddr, VAULT_TOKEN: vaultToken },
      kubectl,
      kubectlRaw: raw,
      local: { kube: !useKube, vault: !useVault },
      stop,
      keep(stateFile: string): KeptWorld {
        const kept: KeptWorld = {
          dir,
          kubeconfig,
          vaultAddr,
          vaultToken,
          processes: procs.map((p) => ({ name: p.name, pid: p.pid, exe: p.exe })),
        };
        fs.writeFileSync(stateFile, JSON.stringify(kept, null, 2), { mode: 0o600 });
        procs.length = 0;
        untrack(key);
        return kept;
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `--down`: stops what `--keep` left (only PIDs that still run the binary it started) and removes its dir. */
export async function stopKept(stateFile: string, log: (line: string) => void): Promise<boolean> {
  if (!fs.existsSync(stateFile)) return false;
  const kept = JSON.parse(fs.readFileSync(stateFile, "utf8")) as KeptWorld;
  for (const p of [...kept.processes].reverse()) {
    let exe = "";
    try {
      exe = fs.readlinkSync(`/proc/${p.pid}/exe`);
    } catch {
      continue; // gone
    }
    if (path.basename(exe) !== path.basename(p.exe)) continue; // the PID now belongs to someone else
    signal(p.pid, "SIGTERM");
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${p.pid}`); i++) await sleep(100);
    if (fs.existsSync(`/proc/${p.pid}`)) signal(p.pid, "SIGKILL");
    log(`world: stopped ${p.name} (pid ${p.pid})`);
  }
  fs.rmSync(kept.dir, { recursive: true, force: true });
  fs.rmSync(stateFile, { force: true });
  return true;
}

function settled(p: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), sleep(ms).then(() => false)]);
}

interface StartContext {
  readonly dir: string;
  readonly serverBin: (name: string) => string;
  readonly start: (name: string, exe: string, args: readonly string[]) => Proc;
  readonly alive: (p: Proc) => () => Promise<void>;
}

async function startControlPlane(
  c: StartContext & { log: (line: string) => void; kubeconfig: string },
): Promise<void> {
  const pki = makePki(path.join(c.dir, "pki"));
  const [etcdClient, etcdPeer, apiPort, cmPort, schedPort] = await Promise.all(
    Array.from({ length: 5 }, () => freePort()),
  );
  const server = `https://127.0.0.1:${apiPort}`;
  const kc = (user: string, file: string) =>
    writeKubeconfig(file, server, pki.ca, pki.cert(user), pki.key(user));
  kc("admin", c.kubeconfig);
  const cmConfig = kc("controller-manager", path.join(c.dir, "controller-manager.kubeconfig"));
  const schedConfig = kc("scheduler", path.join(c.dir, "scheduler.kubeconfig"));
  chownToRunUser(c.dir);

  const etcd = c.start("etcd", c.serverBin("etcd"), [
    "--name=e2e",
    `--data-dir=${path.join(c.dir, "etcd")}`,
    `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
    `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
    `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-cluster=e2e=http://127.0.0.1:${etcdPeer}`,
    "--unsafe-no-fsync",
    "--log-level=warn",
  ]);
  await waitFor("etcd", async () => {
    await c.alive(etcd)();
    const r = await fetch(`http://127.0.0.1:${etcdClient}/health`);
    return r.ok ? true : undefined;
  });

  const api = c.start("kube-apiserver", c.serverBin("kube-apiserver"), [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${apiPort}`,
    `--cert-dir=${path.join(c.dir, "apiserver-certs")}`,
    `--tls-cert-file=${pki.cert("apiserver")}`,
    `--tls-private-key-file=${pki.key("apiserver")}`,
    `--client-ca-file=${pki.ca}`,
    `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--service-cluster-ip-range=10.0.0.0/24",
    "--authorization-mode=Node,RBAC",
    // PodSecurity is on by default; named here because the scenario depends on it.
    "--enable-admission-plugins=PodSecurity",
    // As kubeadm and managed clusters run it: without it the API server itself refuses a privileged
    // container ("disallowed by cluster policy") before Pod Security admission can.
    "--allow-privileged=true",
    "--profiling=false",
  ]);
  const apiReady = async (path_: string) => {
    await c.alive(api)();
    const r = await httpsGet(`${server}${path_}`, pki);
    return r === 200 ? true : undefined;
  };
  await waitFor("kube-apiserver /readyz", () => apiReady("/readyz"), 90_000);

  const common = (kubeconfig: string, port: number, name: string) => [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    `--cert-dir=${path.join(c.dir, `${name}-certs`)}`,
    "--leader-elect=false",
  ];
  const cm = c.start("kube-controller-manager", c.serverBin("kube-controller-manager"), [
    ...common(cmConfig, cmPort, "controller-manager"),
    "--use-service-account-credentials",
    `--root-ca-file=${pki.ca}`,
    `--service-account-private-key-file=${pki.saKey}`,
  ]);
  const sched = c.start("kube-scheduler", c.serverBin("kube-scheduler"), [
    ...common(schedConfig, schedPort, "scheduler"),
  ]);
  for (const [p, port] of [
    [cm, cmPort],
    [sched, schedPort],
  ] as const) {
    await waitFor(`${p.name} /healthz`, async () => {
      await c.alive(p)();
      return (await httpsGet(`https://127.0.0.1:${port}/healthz`)) === 200 ? true : undefined;
    });
  }
}

async function startKwok(
  c: StartContext & { kubectl: Kubectl; raw: KubectlRaw; stages: readonly string[] },
): Promise<void> {
  const stageFile = path.join(c.dir, "kwok-stages.yaml");
  fs.writeFileSync(stageFile, c.stages.map((f) => fs.readFileSync(f, "utf8").trim()).join("\n---\n") + "\n");
  chownToRunUser(stageFile);
  const kwok = c.start("kwok", c.serverBin("kwok"), [
    `--kubeconfig=${path.join(c.dir, "admin.kubeconfig")}`,
    `--config=${stageFile}`,
    "--manage-all-nodes=false",
    `--manage-nodes-with-annotation-selector=${FAKE_NODE_ANNOTATION.key}=${FAKE_NODE_ANNOTATION.value}`,
    // Without leases the node-lifecycle controller marks the fake nodes NotReady every ~50 s.
    "--node-lease-duration-seconds=40",
    "--cidr=10.244.0.0/16",
  ]);
  await c.kubectl(["apply", "--server-side", "--field-manager=clipper-e2e", "-f", "-"], {
    input: asList(NODE_NAMES.map(fakeNode)),
  });
  await waitFor(
    "3 fake nodes Ready",
    async () => {
      await c.alive(kwok)();
      const nodes = await getJson<{
        items: { status?: { conditions?: { type: string; status: string }[] } }[];
      }>(c.kubectl, ["nodes", "-l", "type=kwok"]);
      const ready = nodes.items.filter((n) =>
        (n.status?.conditions ?? []).some((x) => x.type === "Ready" && x.status === "True"),
      );
      return ready.length === NODE_NAMES.length ? true : undefined;
    },
    60_000,
  );
  // Pods can only be created in a namespace once the controller-manager has made its ServiceAccount.
  await waitFor("the default ServiceAccount", async () =>
    (await exists(c.raw, ["serviceaccount", "default", "-n", "default"])) ? true : undefined,
  );
}

function fakeNode(name: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: {
        [FAKE_NODE_ANNOTATION.key]: FAKE_NODE_ANNOTATION.value,
        "node.alpha.kubernetes.io/ttl": "0",
      },
      labels: {
        type: "kwok",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
      },
    },
    status: {
      allocatable: { cpu: "8", memory: "32Gi", pods: "110" },
      capacity: { cpu: "8", memory: "32Gi", pods: "110" },
    },
  };
}

async function installCrds(kubectl: Kubectl, crds: readonly string[]): Promise<void> {
  await kubectl(["apply", "--server-side", "--field-manager=clipper-e2e", ...crds.flatMap((f) => ["-f", f])]);
  await kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/podmonitors.monitoring.coreos.com",
    "crd/prometheusrules.monitoring.coreos.com",
  ]);
}

interface Pki {
  readonly ca: string;
  readonly saKey: string;
  readonly saPub: string;
  cert(name: string): string;
  key(name: string): string;
}

/** A CA, the apiserver's serving cert (SAN 127.0.0.1), client certs, and the service-account key pair. */
function makePki(dir: string): Pki {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=clipper-e2e-ca",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.crt"),
  );
  const leaf = (name: string, subj: string, ext: string) => {
    fs.writeFileSync(f(`${name}.ext`), ext);
    ssl(
      "req",
      "-new",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      subj,
      "-keyout",
      f(`${name}.key`),
      "-out",
      f(`${name}.csr`),
    );
    ssl(
      "x509",
      "-req",
      "-in",
      f(`${name}.csr`),
      "-CA",
      f("ca.crt"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      f(`${name}.ext`),
      "-out",
      f(`${name}.crt`),
    );
  };
  const client = "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
  leaf(
    "apiserver",
    "/CN=kube-apiserver",
    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," +
      "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n",
  );
  leaf("admin", "/O=system:masters/CN=clipper-e2e-admin", client);
  leaf("controller-manager", "/CN=system:kube-controller-manager", client);
  leaf("scheduler", "/CN=system:kube-scheduler", client);
  ssl("genrsa", "-out", f("sa.key"), "2048");
  ssl("rsa", "-in", f("sa.key"), "-pubout", "-out", f("sa.pub"));
  return {
    ca: f("ca.crt"),
    saKey: f("sa.key"),
    saPub: f("sa.pub"),
    cert: (n) => f(`${n}.crt`),
    key: (n) => f(`${n}.key`),
  };
}

/** A kubeconfig with the certificates embedded, so it works on its own (`--keep`). */
function writeKubeconfig(file: string, server: string, ca: string, cert: string, key: string): string {
  const b64 = (p: string) => fs.readFileSync(p).toString("base64");
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "clipper-e2e", cluster: { server, "certificate-authority-data": b64(ca) } }],
    users: [
      { name: "clipper-e2e", user: { "client-certificate-data": b64(cert), "client-key-data": b64(key) } },
    ],
    contexts: [{ name: "clipper-e2e", context: { cluster: "clipper-e2e", user: "clipper-e2e" } }],
    "current-context": "clipper-e2e",
  };
  fs.writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}

function chownToRunUser(target: string): void {
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = runAsIds();
  execFileSync("chown", ["-R", `${uid}:${gid}`, target]);
}

/** GET over TLS; with a PKI, as the admin client; without, trusting any server cert (local healthz only). */
function httpsGet(url: string, pki?: Pki): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(
      url,
      pki
        ? {
            ca: fs.readFileSync(pki.ca),
            cert: fs.readFileSync(pki.cert("admin")),
            key: fs.readFileSync(pki.key("admin")),
          }
        : { rejectUnauthorized: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", () => resolve(0));
    req.setTimeout(5_000, () => req.destroy());
  });
}
