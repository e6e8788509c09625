/**
 * The pooler's TLS as the cluster and OpenBao hold it, for the steps that assert it: the certificate in the
 * Secret `pgbouncer-tls` (issued by OpenBao's PKI root, exactly the Service's four names, its key), the
 * pod template's projected `tls` volume, the CA the backend verifies with, and the NetworkPolicy's egress as
 * the API server stored it.
 */
import * as assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import {
  STATEFULSET_NAME,
  POOLER_CA_CONFIGMAP,
  SERVICE_NAME,
  POD_PATHS,
  TLS_SECRET_KEYS,
  TLS_SECRET_NAME,
  networkPolicySpec,
  serviceNames,
} from "../../../../components/pgbouncer";
import { type KubeObject, getJson, list } from "../../clients/kubectl";
import { pkiCaPem } from "../../clients/vault";
import { POOLER_SELECTOR, type StackRun } from "./stack-run";

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The live certificate: the Secret's uid, the leaf, and its PEM blocks. */
export interface LiveCertificate {
  readonly uid: string;
  readonly leaf: X509Certificate;
  readonly serial: string;
  /** `tls.crt`'s PEM blocks: the leaf, then the issuing CA. */
  readonly chain: string[];
  readonly caCrt: string;
  readonly key: string;
}

/** The Vault PKI mount of the stack, or undefined when the certificate is not Vault's. */
export function pkiMount(r: StackRun): string | undefined {
  const c = r.s.tls.certificate;
  return c?.source === "vault-pki" ? c.mount : undefined;
}

/** OpenBao's root for the stack's mount. */
export async function pkiRoot(r: StackRun): Promise<string> {
  const mount = pkiMount(r);
  assert.ok(mount, "the stack's certificate comes from Vault PKI");
  return pkiCaPem(r.vault, mount);
}

export async function liveCertificate(r: StackRun): Promise<LiveCertificate> {
  const secret = await getJson<KubeObject & { type: string; data: Record<string, string> }>(r.k, [
    "secret",
    TLS_SECRET_NAME,
    "-n",
    r.ns,
  ]);
  assert.equal(secret.type, "kubernetes.io/tls", `Secret ${TLS_SECRET_NAME} type`);
  const text = (k: string) => Buffer.from(secret.data[k] ?? "", "base64").toString("utf8");
  const chain = text(TLS_SECRET_KEYS.cert).match(PEM_BLOCK) ?? [];
  assert.ok(chain.length > 0, `Secret ${TLS_SECRET_NAME} has a certificate in ${TLS_SECRET_KEYS.cert}`);
  const leaf = new X509Certificate(chain[0] ?? "");
  return {
    uid: String(secret.metadata.uid),
    leaf,
    serial: leaf.serialNumber,
    chain,
    caCrt: text(TLS_SECRET_KEYS.ca),
    key: text(TLS_SECRET_KEYS.key),
  };
}

/** `DNS:a, DNS:b` -> the names; anything but DNS names fails. */
export function dnsNames(subjectAltName: string | undefined): string[] {
  const entries = (subjectAltName ?? "").split(", ").filter((e) => e !== "");
  for (const e of entries) assert.match(e, /^DNS:/, `only DNS names in the SANs, got ${e}`);
  return entries.map((e) => e.slice(4)).sort();
}

/**
 * The Secret's certificate: issued by OpenBao's root (signature and issuer name), its SANs exactly the
 * Service's four names, valid now, its key the certificate's, `tls.crt` the leaf then the root, `ca.crt` the
 * root. Returns it.
 */
export async function expectIssuedCertificate(r: StackRun): Promise<LiveCertificate> {
  const rootPem = await pkiRoot(r);
  const root = new X509Certificate(rootPem);
  const c = await liveCertificate(r);
  assert.ok(c.leaf.checkIssued(root), `the certificate's issuer is OpenBao's root (${c.leaf.issuer})`);
  assert.ok(c.leaf.verify(root.publicKey), "the certificate is signed by OpenBao's root key");
  assert.deepEqual(
    dnsNames(c.leaf.subjectAltName),
    serviceNames(SERVICE_NAME, r.ns).sort(),
    "the certificate's SANs are exactly the Service's four names",
  );
  const now = Date.now();
  assert.ok(Date.parse(c.leaf.validFrom) <= now && now < Date.parse(c.leaf.validTo), "valid now");
  assert.ok(
    c.leaf.checkPrivateKey(createPrivateKey(c.key)),
    `${TLS_SECRET_KEYS.key} is the certificate's key`,
  );
  assert.equal(c.chain.length, 2, `${TLS_SECRET_KEYS.cert}: the certificate, then the issuing CA`);
  assert.equal(c.chain[1].trim(), rootPem.trim(), `${TLS_SECRET_KEYS.cert}'s second block is the root`);
  assert.equal(c.caCrt.trim(), rootPem.trim(), `${TLS_SECRET_KEYS.ca} is OpenBao's root`);
  return c;
}

interface PodTemplateLike {
  spec: {
    volumes?: {
      name: string;
      projected?: { sources: Record<string, { name: string; items?: { key: string; path: string }[] }>[] };
    }[];
    containers: { name: string; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }[];
  };
}

/**
 * The pod template and every live pooler pod (their specs: no volume is mounted on kwok) name the projected volume `tls`: the Secret's certificate and
 * key, and (when the stack verifies PostgreSQL) the server CA, read-only at /etc/pgbouncer/tls.
 */
export async function expectTlsMounted(r: StackRun): Promise<void> {
  const dep = await getJson<KubeObject & { spec: { template: PodTemplateLike } }>(r.k, [
    "statefulset",
    STATEFULSET_NAME,
    "-n",
    r.ns,
  ]);
  const pods = (await list(r.k, "pods", r.ns, POOLER_SELECTOR)).filter(
    (p) => !p.metadata.deletionTimestamp,
  ) as unknown as (KubeObject & PodTemplateLike)[];
  const ca = r.s.tls.serverCa;
  for (const [what, spec] of [
    ["the pod template", dep.spec.template.spec],
    ...pods.map((p) => [`pod ${p.metadata.name}`, p.spec] as const),
  ] as const) {
    const tls = (spec.volumes ?? []).find((v) => v.name === "tls");
    assert.ok(tls?.projected, `${what} has the projected volume tls`);
    const sources = tls.projected.sources;
    const secret = sources.find((x) => x.secret)?.secret;
    assert.equal(secret?.name, TLS_SECRET_NAME, `${what}: volume tls projects Secret ${TLS_SECRET_NAME}`);
    assert.deepEqual(
      (secret?.items ?? []).map((i) => i.key).sort(),
      [TLS_SECRET_KEYS.cert, TLS_SECRET_KEYS.key].sort(),
    );
    if (ca && ca.source !== "vault") {
      const src = sources.find(
        (x) => x[ca.source === "configmap" ? "configMap" : "secret"]?.name === ca.name,
      );
      assert.ok(src, `${what}: volume tls projects the server CA ${ca.source} ${ca.name}`);
    }
    const mounts = spec.containers.flatMap((c) => (c.volumeMounts ?? []).filter((m) => m.name === "tls"));
    assert.ok(mounts.length > 0, `${what}: a container mounts volume tls`);
    for (const m of mounts) {
      assert.equal(m.mountPath, POD_PATHS.tlsDir);
      assert.equal(m.readOnly, true, `${what}: volume tls is mounted read-only`);
    }
  }
}

/**
 * The backend's TLS outputs: `sslMode` verify-full, `caRef` the ConfigMap `pgbouncer-ca`, `caBundle`
 * OpenBao's root and the ConfigMap's `ca.crt`; `dbHost` is a name of the certificate.
 */
export async function expectBackendTlsOutputs(r: StackRun, out: Record<string, unknown>): Promise<void> {
  const rootPem = await pkiRoot(r);
  assert.equal(out.sslMode, "verify-full", "stack output sslMode");
  assert.deepEqual(
    out.caRef,
    { kind: "ConfigMap", name: POOLER_CA_CONFIGMAP, key: TLS_SECRET_KEYS.ca },
    "stack output caRef",
  );
  assert.equal(String(out.caBundle).trim(), rootPem.trim(), "stack output caBundle is OpenBao's root");
  const cm = await getJson<KubeObject & { data: Record<string, string> }>(r.k, [
    "configmap",
    POOLER_CA_CONFIGMAP,
    "-n",
    r.ns,
  ]);
  assert.equal(cm.data[TLS_SECRET_KEYS.ca].trim(), rootPem.trim(), `ConfigMap ${POOLER_CA_CONFIGMAP} ca.crt`);
  const c = await liveCertificate(r);
  assert.ok(dnsNames(c.leaf.subjectAltName).includes(String(out.dbHost)), "dbHost is one of the SANs");
}

/**
 * The NetworkPolicy as the API server stored it: Ingress and Egress, and exactly the egress the program
 * renders (DNS, then PostgreSQL's port); and the API server validates egress (a bad protocol is refused).
 */
export async function expectEgressPolicy(r: StackRun): Promise<void> {
  const [np] = await list(r.k, "networkpolicies.networking.k8s.io", r.ns, POOLER_SELECTOR);
  const spec = np.spec as { policyTypes: string[]; egress: unknown[] };
  assert.deepEqual(spec.policyTypes, ["Ingress", "Egress"], "NetworkPolicy policyTypes");
  const want = networkPolicySpec("pgbouncer", r.s, r.ns).egress;
  assert.deepEqual(spec.egress, want, "NetworkPolicy egress as rendered");
  const bad = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "e2e-egress-probe", namespace: r.ns },
    spec: { podSelector: {}, policyTypes: ["Egress"], egress: [{ ports: [{ protocol: "ICMP", port: 53 }] }] },
  };
  const res = await r.world.kubectlRaw(["apply", "--dry-run=server", "-f", "-"], {
    input: JSON.stringify(bad),
  });
  assert.notEqual(res.code, 0, "the API server refuses an egress rule with a bad protocol");
  assert.match(res.stderr, BAD_PROTOCOL_REFUSAL, res.stderr);
}

/** What the API server answers an egress port whose protocol is none of TCP, UDP, SCTP. */
export const BAD_PROTOCOL_REFUSAL =
  /spec\.egress\[0\]\.ports\[0\]\.protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"/;
