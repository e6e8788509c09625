/**
 * The local control plane's certificates (openssl): a CA, the API server's serving certificate, a client
 * certificate per component, the service-account key pair; and kubeconfigs with them embedded.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { runOk } from "../../common";

export interface Pki {
  readonly ca: string;
  readonly saKey: string;
  readonly saPub: string;
  cert(name: string): string;
  key(name: string): string;
}

/** A CA, the apiserver's serving cert (SAN 127.0.0.1), client certs, and the service-account key pair. */
export async function makePki(dir: string): Promise<Pki> {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  await openssl(
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
  const client = "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
  await leafCert(
    dir,
    "apiserver",
    "/CN=kube-apiserver",
    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," +
      "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n",
  );
  await leafCert(dir, "admin", "/O=system:masters/CN=clipper-e2e-admin", client);
  await leafCert(dir, "controller-manager", "/CN=system:kube-controller-manager", client);
  await leafCert(dir, "scheduler", "/CN=system:kube-scheduler", client);
  await openssl("genrsa", "-out", f("sa.key"), "2048");
  await openssl("rsa", "-in", f("sa.key"), "-pubout", "-out", f("sa.pub"));
  return {
    ca: f("ca.crt"),
    saKey: f("sa.key"),
    saPub: f("sa.pub"),
    cert: (n) => f(`${n}.crt`),
    key: (n) => f(`${n}.key`),
  };
}

function openssl(...args: string[]): Promise<string> {
  return runOk("openssl", args);
}

/** `<name>.key` and `<name>.crt` in `dir`, signed by its CA, with subject `subj` and extensions `ext`. */
async function leafCert(dir: string, name: string, subj: string, ext: string): Promise<void> {
  const f = (n: string) => path.join(dir, n);
  fs.writeFileSync(f(`${name}.ext`), ext);
  await openssl(
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
  await openssl(
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
}

/** A kubeconfig with the certificates embedded, so it works on its own (`--keep`). */
export function writeKubeconfig(
  file: string,
  server: string,
  ca: string,
  cert: string,
  key: string,
  more: { readonly contexts?: readonly string[]; readonly current?: string } = {},
): string {
  const b64 = (p: string) => fs.readFileSync(p).toString("base64");
  // Every context on the one cluster and user: the stacks' contexts (`more.contexts`) are names, as a
  // platform team's kubeconfig gives each cluster its own.
  const contexts = ["clipper-e2e", ...(more.contexts ?? [])];
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "clipper-e2e", cluster: { server, "certificate-authority-data": b64(ca) } }],
    users: [
      { name: "clipper-e2e", user: { "client-certificate-data": b64(cert), "client-key-data": b64(key) } },
    ],
    contexts: contexts.map((name) => ({ name, context: { cluster: "clipper-e2e", user: "clipper-e2e" } })),
    "current-context": more.current ?? "clipper-e2e",
  };
  fs.writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}
