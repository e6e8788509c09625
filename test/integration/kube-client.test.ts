/**
 * The preflight's cluster reader against a real HTTPS server with an openssl-made PKI: it verifies the
 * server with the kubeconfig's CA (or skips that when the kubeconfig says so), authenticates as kubectl would
 * (bearer token, token file, client certificate, exec credential plugin), tells a missing object (404) from
 * a refused read (403) and from a server it cannot reach, and refuses an auth-provider it cannot run.
 */
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import type { AddressInfo } from "net";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import {
  type ClusterTarget,
  ClusterReadError,
  type KubeUser,
  clusterReader,
  mergeKubeconfigs,
  resolveContext,
} from "../../components/providers";

const b64 = (s: string) => Buffer.from(s).toString("base64");

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function makePki(
  dir: string,
): Record<"ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey" | "otherCa", string> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    dir,
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "1",
    "-subj",
    "/CN=test ca",
  );
  openssl(
    dir,
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "other.key",
    "-out",
    "other.crt",
    "-days",
    "1",
    "-subj",
    "/CN=other",
  );
  fs.writeFileSync(path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
  for (const [name, cn, ext] of [
    ["server", "127.0.0.1", ["-extfile", "san.ext"]],
    ["client", "admin", []],
  ] as const) {
    openssl(dir, "req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`);
    openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "1",
      ...ext,
    );
  }
  const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
  return {
    ca: read("ca.crt"),
    serverCert: read("server.crt"),
    serverKey: read("server.key"),
    clientCert: read("client.crt"),
    clientKey: read("client.key"),
    otherCa: read("other.crt"),
  };
}

describe("the preflight's cluster reader, against a real HTTPS server", () => {
  let dir: string;
  let pki: ReturnType<typeof makePki>;
  let server: https.Server;
  let url: string;
  /** What the server saw of the last request. */
  let seen: { authorization?: string; clientCn?: string } = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-kube-client-"));
    pki = makePki(dir);
    server = https.createServer(
      { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const socket = req.socket as import("tls").TLSSocket;
        const peer = socket.authorized ? socket.getPeerCertificate() : undefined;
        seen = {
          authorization: req.headers.authorization,
          clientCn: peer?.subject?.CN as string | undefined,
        };
        const json = (status: number, body: object) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        };
        if (req.url === "/prefix/api/v1/namespaces/clipper/configmaps/present") {
          json(200, { kind: "ConfigMap", data: { "ca.crt": "x" } });
        } else if (req.url?.endsWith("/forbidden")) {
          json(403, { kind: "Status", message: 'configmaps "forbidden" is forbidden' });
        } else json(404, { kind: "Status", message: "not found" });
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`;
  });

  after(async () => {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A target as a kubeconfig (one context "ctx") resolves it. */
  function target(cluster: string, user: string): ClusterTarget {
    const text = `
clusters: [{name: c, cluster: {server: "${url}", ${cluster}}}]
users: [{name: u, user: {${user}}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`;
    const k = mergeKubeconfigs(path.join(dir, "config"), [{ file: path.join(dir, "config"), text }]);
    const r = resolveContext(k, "ctx");
    assert.ok("cluster" in r);
    return { context: "ctx", source: k.source, cluster: r.cluster, user: r.user };
  }
  const read = (t: ClusterTarget, env: Record<string, string> = {}) =>
    clusterReader(t, {
      env: { PATH: process.env.PATH, ...env },
      readFile: (f) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined),
    });
  const CA = () => `certificate-authority-data: ${b64(pki.ca)}`;

  it("with the kubeconfig's CA and a token: an object, undefined for 404, a 403 with its status", async () => {
    const r = read(target(CA(), "token: t0ken"));
    assert.deepStrictEqual(await r.get("/api/v1/namespaces/clipper/configmaps/present"), {
      kind: "ConfigMap",
      data: { "ca.crt": "x" },
    });
    assert.strictEqual(seen.authorization, "Bearer t0ken");
    assert.strictEqual(await r.get("/api/v1/namespaces/clipper/configmaps/absent"), undefined);
    await assert.rejects(r.get("/api/v1/namespaces/clipper/configmaps/forbidden"), (e: unknown) => {
      assert.ok(e instanceof ClusterReadError && e.status === 403, String(e));
      assert.match(e.message, /HTTP 403: configmaps "forbidden" is forbidden/);
      return true;
    });
    assert.match(r.describe, /^the cluster of context "ctx" \(https:\/\/127\.0\.0\.1:\d+\/prefix\)$/);
  });

  it("refuses a server its CA did not sign (no status: it never got an answer); insecure-skip-tls-verify skips that", async () => {
    const wrong = read(target(`certificate-authority-data: ${b64(pki.otherCa)}`, "token: t"));
    await assert.rejects(wrong.get("/api/v1/namespaces/clipper/configmaps/present"), (e: unknown) => {
      assert.ok(e instanceof ClusterReadError && e.status === undefined, String(e));
      return true;
    });
    const insecure = read(target("insecure-skip-tls-verify: true", "token: t"));
    assert.ok(await insecure.get("/api/v1/namespaces/clipper/configmaps/present"));
  });

  it("authenticates with a client certificate, from data or from files next to the kubeconfig", async () => {
    await read(
      target(CA(), `client-certificate-data: ${b64(pki.clientCert)}, client-key-data: ${b64(pki.clientKey)}`),
    ).get("/api/v1/namespaces/clipper/configmaps/present");
    assert.strictEqual(seen.clientCn, "admin");
    seen = {};
    await read(
      target(`certificate-authority: ca.crt`, "client-certificate: client.crt, client-key: client.key"),
    ).get("/api/v1/namespaces/clipper/configmaps/present");
    assert.strictEqual(seen.clientCn, "admin");
  });

  it("reads a token file", async () => {
    fs.writeFileSync(path.join(dir, "token"), "from-file\n");
    await read(target(CA(), "tokenFile: token")).get("/api/v1/namespaces/clipper/configmaps/present");
    assert.strictEqual(seen.authorization, "Bearer from-file");
  });

  it("runs an exec credential plugin with KUBERNETES_EXEC_INFO and its env, and uses its token", async () => {
    const plugin = path.join(dir, "plugin.sh");
    fs.writeFileSync(
      plugin,
      '#!/bin/sh\ncase "$KUBERNETES_EXEC_INFO" in *ExecCredential*) ;; *) exit 3 ;; esac\n' +
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\' "$PLUGIN_TOKEN"\n',
      { mode: 0o755 },
    );
    const t = target(
      CA(),
      `exec: {apiVersion: client.authentication.k8s.io/v1, command: ./plugin.sh, env: [{name: PLUGIN_TOKEN, value: from-plugin}]}`,
    );
    await read(t).get("/api/v1/namespaces/clipper/configmaps/present");
    assert.strictEqual(seen.authorization, "Bearer from-plugin");
    const failing = target(CA(), "exec: {command: /bin/false}");
    await assert.rejects(read(failing).get("/x"), /the kubeconfig's credential plugin \/bin\/false failed/);
  });

  it("names a server it cannot reach", async () => {
    const t = target(CA(), "token: t");
    const closed = { ...t, cluster: { ...t.cluster, server: "https://127.0.0.1:1" } };
    await assert.rejects(read(closed).get("/api/v1/namespaces/x"), (e: unknown) => {
      assert.ok(e instanceof ClusterReadError && e.status === undefined);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
  });

  it("refuses an auth-provider, which it cannot run", async () => {
    const user: KubeUser = { authProvider: "gcp" };
    const t = { ...target(CA(), "token: t"), user };
    await assert.rejects(
      read(t).get("/x"),
      /authenticates with the auth-provider "gcp", which the program cannot use/,
    );
  });
});
