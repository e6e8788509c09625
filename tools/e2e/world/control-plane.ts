/**
 * The local control plane on free ports of 127.0.0.1: etcd, kube-apiserver (Pod Security admission on,
 * RBAC), kube-controller-manager and kube-scheduler, each waited on until healthy.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { freePort } from "../../harness/proc";
import { waitFor } from "../clients/kubectl";
import { type Pki, makePki, writeKubeconfig } from "./pki";
import { type Servers, chownToRunUser } from "./processes";

/**
 * Starts the control plane; `kubeconfig` is where the admin's kubeconfig goes, with a context of each name in
 * `contexts` besides its own (current). `stackKubeconfigs` (context -> file) get the same with that context
 * current: a shell set up for that stack.
 */
export async function startControlPlane(
  c: Servers,
  kubeconfig: string,
  contexts: readonly string[] = [],
  stackKubeconfigs: ReadonlyMap<string, string> = new Map(),
): Promise<void> {
  const pki = await makePki(path.join(c.dir, "pki"));
  const [etcdClient, etcdPeer, apiPort, cmPort, schedPort] = await Promise.all(
    Array.from({ length: 5 }, () => freePort()),
  );
  const server = `https://127.0.0.1:${apiPort}`;
  const kc = (user: string, file: string) =>
    writeKubeconfig(file, server, pki.ca, pki.cert(user), pki.key(user));
  const admin = (file: string, current?: string) =>
    writeKubeconfig(file, server, pki.ca, pki.cert("admin"), pki.key("admin"), {
      contexts,
      ...(current ? { current } : {}),
    });
  admin(kubeconfig);
  for (const [context, file] of stackKubeconfigs) admin(file, context);
  const cmConfig = kc("controller-manager", path.join(c.dir, "controller-manager.kubeconfig"));
  const schedConfig = kc("scheduler", path.join(c.dir, "scheduler.kubeconfig"));
  await chownToRunUser(c.dir);

  await startEtcd(c, etcdClient, etcdPeer);
  await startApiServer(c, pki, apiPort, etcdClient);
  await startControllers(c, pki, { cmConfig, cmPort, schedConfig, schedPort });
}

async function startEtcd(c: Servers, clientPort: number, peerPort: number): Promise<void> {
  const etcd = c.start("etcd", c.serverBin("etcd"), [
    "--name=e2e",
    `--data-dir=${path.join(c.dir, "etcd")}`,
    `--listen-client-urls=http://127.0.0.1:${clientPort}`,
    `--advertise-client-urls=http://127.0.0.1:${clientPort}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=e2e=http://127.0.0.1:${peerPort}`,
    "--unsafe-no-fsync",
    "--log-level=warn",
  ]);
  await waitFor("etcd", async () => {
    await c.alive(etcd)();
    const r = await fetch(`http://127.0.0.1:${clientPort}/health`);
    return r.ok ? true : undefined;
  });
}

async function startApiServer(c: Servers, pki: Pki, port: number, etcdPort: number): Promise<void> {
  const api = c.start("kube-apiserver", c.serverBin("kube-apiserver"), [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
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
  await waitFor(
    "kube-apiserver /readyz",
    async () => {
      await c.alive(api)();
      return (await httpsGet(`https://127.0.0.1:${port}/readyz`, pki)) === 200 ? true : undefined;
    },
    90_000,
  );
}

async function startControllers(
  c: Servers,
  pki: Pki,
  o: { cmConfig: string; cmPort: number; schedConfig: string; schedPort: number },
): Promise<void> {
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
    ...common(o.cmConfig, o.cmPort, "controller-manager"),
    "--use-service-account-credentials",
    `--root-ca-file=${pki.ca}`,
    `--service-account-private-key-file=${pki.saKey}`,
  ]);
  const sched = c.start("kube-scheduler", c.serverBin("kube-scheduler"), [
    ...common(o.schedConfig, o.schedPort, "scheduler"),
  ]);
  for (const [p, port] of [
    [cm, o.cmPort],
    [sched, o.schedPort],
  ] as const) {
    await waitFor(`${p.name} /healthz`, async () => {
      await c.alive(p)();
      return (await httpsGet(`https://127.0.0.1:${port}/healthz`)) === 200 ? true : undefined;
    });
  }
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
