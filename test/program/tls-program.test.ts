/**
 * TLS, egress and image pinning through the whole program under the mock engine: what each stack setting
 * registers, mounts and exports, and that a renewed certificate changes its Secret (and its expiry rule),
 * never the pod template.
 */
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import {
  DeletedVersion,
  type OfflineRun,
  type RecordedResource,
  type VaultSource,
  runOffline,
} from "../../testing/engine";
import { isSecretMarker } from "../../testing/manifests";
import { OFFLINE_CA_PEM, offlineVault } from "../../testing/offline-vault";
import { VAULT_PKI_CERT_TYPE } from "../../testing/pki";
import { CONFIG_NAMESPACE, rawStackConfig, stackFileConfig } from "../../stacks/stack-file";

type Patch = Record<string, Record<string, unknown>>;

/** The stack file's config with whole fields of sections replaced. */
function configWith(stack: string, patch: Patch): Record<string, string> {
  const raw = rawStackConfig(stackFileConfig(stack));
  return Object.fromEntries(
    Object.entries(patch).map(([section, fields]) => [
      `${CONFIG_NAMESPACE}:${section}`,
      JSON.stringify({ ...((raw[section] as object) ?? {}), ...fields }),
    ]),
  );
}

async function run(stack: string, patch: Patch = {}, renewals = 0): Promise<OfflineRun> {
  const config = configWith(stack, patch);
  return runOffline({ stack, config, vault: offlineVault(stack, { config }), renewals });
}

function resource(r: OfflineRun, type: string, name: string): any {
  const found = r.resources.filter((x) => x.type === type && x.name === name);
  assert.strictEqual(found.length, 1, `expected one ${type} ${name}, got ${found.length}`);
  return found[0].inputs;
}

/** `v` with every secret marker replaced by the value it wraps. */
function plain(v: unknown): unknown {
  if (isSecretMarker(v)) return plain(v.value);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function podSpec(r: OfflineRun): any {
  return resource(r, "kubernetes:apps/v1:StatefulSet", "pgbouncer-statefulset").spec.template.spec;
}

/** The labels that select the pooler's pods. */
function podSpecSelector(r: OfflineRun): Record<string, string> {
  return resource(r, "kubernetes:apps/v1:StatefulSet", "pgbouncer-statefulset").spec.selector.matchLabels;
}

function ini(r: OfflineRun): string {
  return resource(r, "kubernetes:core/v1:ConfigMap", "pgbouncer-config").data["pgbouncer.ini"];
}

describe("TLS through the program", () => {
  describe("prod as shipped: Vault PKI certificate, PostgreSQL verified", () => {
    let prod: OfflineRun;
    before(async () => {
      prod = await run("prod");
    });

    it("issues the certificate for dbHost with every Service name as a SAN, renewed by pulumi up", () => {
      const cert = resource(prod, VAULT_PKI_CERT_TYPE, "pgbouncer-client-cert");
      assert.deepStrictEqual(
        {
          backend: cert.backend,
          name: cert.name,
          commonName: cert.commonName,
          altNames: cert.altNames,
          ttl: cert.ttl,
          autoRenew: cert.autoRenew,
          minSecondsRemaining: cert.minSecondsRemaining,
        },
        {
          backend: "pki",
          name: "clipper-pgbouncer",
          commonName: prod.outputs.dbHost,
          altNames: [
            "pgbouncer",
            "pgbouncer.clipper",
            "pgbouncer.clipper.svc",
            "pgbouncer.clipper.svc.cluster.local",
          ],
          ttl: "2592000",
          autoRenew: true,
          minSecondsRemaining: 864000,
        },
      );
    });

    it("puts it in the kubernetes.io/tls Secret pgbouncer-tls, the key a secret, and its CA in pgbouncer-ca", () => {
      const secret = resource(prod, "kubernetes:core/v1:Secret", "pgbouncer-tls");
      assert.strictEqual(secret.metadata.name, "pgbouncer-tls");
      assert.strictEqual(secret.type, "kubernetes.io/tls");
      const data = isSecretMarker(secret.stringData) ? secret.stringData.value : secret.stringData;
      assert.deepStrictEqual(Object.keys(data).sort(), ["ca.crt", "tls.crt", "tls.key"]);
      assert.ok(
        isSecretMarker(secret.stringData) || isSecretMarker(data["tls.key"]),
        "the private key is a secret",
      );
      const ca = resource(prod, "kubernetes:core/v1:ConfigMap", "pgbouncer-ca");
      assert.strictEqual(ca.metadata.name, "pgbouncer-ca");
      assert.strictEqual(ca.data["ca.crt"], prod.outputs.caBundle);
    });

    it("renders both legs in the ini, with the files of the pod's validated copy of one projected volume", () => {
      const text = ini(prod);
      for (const line of [
        "client_tls_sslmode = require",
        "client_tls_cert_file = /var/run/pgbouncer/applied/current/tls.crt",
        "client_tls_key_file = /var/run/pgbouncer/applied/current/tls.key",
        "client_tls_ca_file = /var/run/pgbouncer/applied/current/tls.crt",
        "client_tls_protocols = tlsv1.2,tlsv1.3",
        "server_tls_sslmode = verify-full",
        "server_tls_ca_file = /var/run/pgbouncer/applied/current/server-ca.crt",
        "server_tls_protocols = tlsv1.2,tlsv1.3",
      ]) {
        assert.ok(text.split("\n").includes(line), `${line} missing from:\n${text}`);
      }
      const tls = podSpec(prod).volumes.find((v: any) => v.name === "tls");
      assert.deepStrictEqual(tls.projected.sources, [
        {
          secret: {
            name: "pgbouncer-tls",
            items: [
              { key: "tls.crt", path: "tls.crt" },
              { key: "tls.key", path: "tls.key" },
            ],
          },
        },
        { configMap: { name: "postgres-ca", items: [{ key: "ca.crt", path: "server-ca.crt" }] } },
      ]);
      const mount = podSpec(prod).containers[0].volumeMounts.find((m: any) => m.name === "tls");
      assert.deepStrictEqual(mount, { name: "tls", mountPath: "/etc/pgbouncer/tls", readOnly: true });
    });

    it("exports what the backend verifies the pooler with", () => {
      assert.strictEqual(prod.outputs.sslMode, "verify-full");
      assert.deepStrictEqual(prod.outputs.caRef, { kind: "ConfigMap", name: "pgbouncer-ca", key: "ca.crt" });
    });

    it("lets the pods out to DNS, PostgreSQL's port and their peers' client port only", () => {
      const np = resource(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "pgbouncer-netpol");
      assert.deepStrictEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
      assert.deepStrictEqual(np.spec.egress, [
        {
          to: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
              podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
            },
          ],
          ports: [
            { protocol: "UDP", port: 53 },
            { protocol: "TCP", port: 53 },
          ],
        },
        {
          to: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "clipper" } },
              podSelector: {},
            },
          ],
          ports: [{ protocol: "TCP", port: 5432 }],
        },
        {
          to: [{ podSelector: { matchLabels: podSpecSelector(prod) } }],
          ports: [{ protocol: "TCP", port: 6432 }],
        },
      ]);
    });

    it("a renewed certificate changes its Secret (same name) and its expiry rule, not the pod template (no roll)", async () => {
      // What `pulumi up --refresh` registers once Vault re-issued the certificate (autoRenew): the same
      // inputs, a new certificate and key from the same CA.
      const renewed = await run("prod", {}, 1);
      const secret = (r: OfflineRun) => {
        const s = resource(r, "kubernetes:core/v1:Secret", "pgbouncer-tls");
        return { name: s.metadata.name, data: plain(s.stringData) as Record<string, string> };
      };
      const before = secret(prod);
      const after = secret(renewed);
      assert.match(after.data["tls.crt"], /renewal 1/);
      assert.notStrictEqual(after.data["tls.crt"], before.data["tls.crt"]);
      assert.notStrictEqual(after.data["tls.key"], before.data["tls.key"]);
      assert.strictEqual(after.data["ca.crt"], before.data["ca.crt"]);
      assert.strictEqual(after.name, "pgbouncer-tls");
      assert.strictEqual(after.name, before.name);
      const template = (r: OfflineRun) =>
        resource(r, "kubernetes:apps/v1:StatefulSet", "pgbouncer-statefulset").spec.template;
      assert.deepStrictEqual(template(renewed), template(prod));
      // nothing else changes but the expiry the certificate's alert rules hold
      const inputs = (r: OfflineRun) =>
        new Map(r.resources.map((x) => [`${x.type} ${x.name}`, JSON.stringify(plain(x.inputs))]));
      const was = inputs(prod);
      assert.deepStrictEqual([...inputs(renewed).keys()].sort(), [...was.keys()].sort());
      assert.deepStrictEqual(
        [...inputs(renewed)]
          .filter(([k, v]) => was.get(k) !== v)
          .map(([k]) => k)
          .sort(),
        [
          "kubernetes:core/v1:Secret pgbouncer-tls",
          "kubernetes:monitoring.coreos.com/v1:PrometheusRule pgbouncer-monitoring-certificate-rules",
        ],
      );
    });
  });

  it("staging chooses prefer towards PostgreSQL: no CA mounted, clients still on TLS", async () => {
    const staging = await run("staging");
    assert.match(ini(staging), /^server_tls_sslmode = prefer$/m);
    assert.doesNotMatch(ini(staging), /server_tls_ca_file/);
    assert.match(ini(staging), /^client_tls_sslmode = require$/m);
    assert.strictEqual(staging.outputs.sslMode, "verify-full");
  });

  it("the direct route exports PostgreSQL's verification: the rollback keeps the database leg verified", async () => {
    const direct = await run("prod", { backend: { route: "direct" } });
    assert.strictEqual(direct.outputs.dbHost, "postgres.clipper.svc.cluster.local");
    assert.strictEqual(direct.outputs.sslMode, "verify-full");
    assert.deepStrictEqual(direct.outputs.caRef, { kind: "ConfigMap", name: "postgres-ca", key: "ca.crt" });
    const staging = await run("staging", { backend: { route: "direct" } });
    assert.strictEqual(staging.outputs.sslMode, "prefer");
    assert.strictEqual(staging.outputs.caRef, undefined);
  });

  it("an existing Secret (cert-manager's) is mounted as it is, with no certificate issued and no expiry alert", async () => {
    const r = await run("prod", {
      tls: { certificate: { source: "secret", name: "pgbouncer-cert-manager" } },
    });
    assert.ok(!r.resources.some((x) => x.type === VAULT_PKI_CERT_TYPE));
    assert.ok(!r.resources.some((x) => x.name === "pgbouncer-tls" || x.name.endsWith("certificate-rules")));
    const tls = podSpec(r).volumes.find((v: any) => v.name === "tls");
    assert.strictEqual(tls.projected.sources[0].secret.name, "pgbouncer-cert-manager");
    assert.deepStrictEqual(r.outputs.caRef, {
      kind: "Secret",
      name: "pgbouncer-cert-manager",
      key: "ca.crt",
    });
  });

  it("clients without TLS: no certificate, and the script watches no TLS folder when none is mounted", async () => {
    const r = await run("staging", { tls: { clientSslMode: "disable" } });
    assert.match(ini(r), /^client_tls_sslmode = disable$/m);
    assert.doesNotMatch(ini(r), /client_tls_cert_file/);
    const env = podSpec(r).containers[0].env.find((e: any) => e.name === "PGBOUNCER_SOURCES");
    assert.strictEqual(env.value, "/etc/pgbouncer/config /etc/pgbouncer/auth");
    assert.ok(!podSpec(r).volumes.some((v: any) => v.name === "tls"));
    assert.strictEqual(r.outputs.sslMode, "disable");
  });

  it("a server CA held in Vault is copied into the ConfigMap pgbouncer-server-ca and mounted", async () => {
    const r = await run("prod", {
      tls: {
        serverCa: { source: "vault", mount: "secret", path: "clipper/prod/postgres-ca", key: "ca.crt" },
      },
    });
    const cm = resource(r, "kubernetes:core/v1:ConfigMap", "pgbouncer-server-ca");
    assert.strictEqual(cm.data["ca.crt"], OFFLINE_CA_PEM);
    const tls = podSpec(r).volumes.find((v: any) => v.name === "tls");
    assert.strictEqual(tls.projected.sources[1].configMap.name, "pgbouncer-server-ca");
  });

  it("a server CA held in a Secret is mounted from that Secret, and is what the direct route verifies with", async () => {
    const r = await run("prod", {
      tls: { serverCa: { source: "secret", name: "postgres-tls", key: "ca.pem" } },
      backend: { route: "direct" },
    });
    const tls = podSpec(r).volumes.find((v: any) => v.name === "tls");
    assert.deepStrictEqual(tls.projected.sources[1], {
      secret: { name: "postgres-tls", items: [{ key: "ca.pem", path: "server-ca.crt" }] },
    });
    assert.deepStrictEqual(r.outputs.caRef, { kind: "Secret", name: "postgres-tls", key: "ca.pem" });
  });

  it("an external database gets an egress rule to its CIDRs, an IP host to that address", async () => {
    const rds = await run("prod", {
      database: { host: "clipper.abc.eu-west-1.rds.amazonaws.com" },
      network: { databaseCidrs: ["10.20.0.0/16"] },
    });
    const np = resource(rds, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "pgbouncer-netpol");
    assert.deepStrictEqual(np.spec.egress[1], {
      to: [{ ipBlock: { cidr: "10.20.0.0/16" } }],
      ports: [{ protocol: "TCP", port: 5432 }],
    });
    const ip = await run("prod", { database: { host: "10.1.2.3" } });
    assert.deepStrictEqual(
      resource(ip, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "pgbouncer-netpol").spec.egress[1].to,
      [{ ipBlock: { cidr: "10.1.2.3/32" } }],
    );
  });

  it("pins each image by digest after its tag when the stack sets one", async () => {
    const d1 = `sha256:${"1".repeat(64)}`;
    const d2 = `sha256:${"2".repeat(64)}`;
    const r = await run("prod", { pgbouncer: { digest: d1 }, exporter: { digest: d2 } });
    const images = podSpec(r).containers.map((c: any) => c.image);
    assert.deepStrictEqual(images, [
      `ghcr.io/cloudnative-pg/pgbouncer:1.25.2@${d1}`,
      `prometheuscommunity/pgbouncer-exporter:v0.12.1@${d2}`,
    ]);
  });
});

describe("a server CA held in Vault: read before anything is registered, every failure one message", () => {
  const CA = { source: "vault", mount: "secret", path: "clipper/prod/postgres-ca", key: "ca.crt" };
  const config = configWith("prod", { tls: { serverCa: CA } });
  const stackVault = offlineVault("prod", { config });
  /** The stack's Vault, with `ca` answering the CA's path (undefined: no such secret). */
  const withCa =
    (ca: Record<string, string> | DeletedVersion | undefined): VaultSource =>
    (mount, name) =>
      mount === CA.mount && name === CA.path ? ca : stackVault(mount, name);

  async function refused(vault: VaultSource, message: RegExp): Promise<void> {
    const record: RecordedResource[] = [];
    await assert.rejects(runOffline({ stack: "prod", config, vault, record }), (e: unknown) => {
      assert.ok(pulumi.RunError.isInstance(e), String(e));
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, /\n\s+at /, "no stack trace");
      return true;
    });
    assert.deepStrictEqual(
      record.map((r) => r.type),
      ["pulumi:providers:vault"],
      "nothing registered but the Vault provider it read with",
    );
  }

  it("reads it before the first resource other than the Vault provider is registered", async () => {
    const r = await runOffline({ stack: "prod", config, vault: stackVault });
    const lastRead = r.events.map((e) => e.startsWith("invoke vault:")).lastIndexOf(true);
    const firstOther = r.events.findIndex(
      (e) => e.startsWith("register") && !e.includes("pulumi:providers:vault"),
    );
    assert.ok(lastRead >= 0 && lastRead < firstOther, r.events.join("\n"));
  });

  it("GIVEN no secret at its path THEN it names the mount, path, setting and the Vault's address", () =>
    refused(
      withCa(undefined),
      /Vault KV v2 mount "secret" path "clipper\/prod\/postgres-ca" \(clipper-pgbouncer:tls\.serverCa\.path\): could not be read from the Vault at https:\/\/vault\.prod\.clipper\.example:8200 \(error reading from Vault: no secret found/,
    ));

  it("GIVEN the secret without the key THEN it names the key and the keys present", () =>
    refused(
      withCa({ "root.crt": OFFLINE_CA_PEM }),
      /key "ca\.crt" \(clipper-pgbouncer:tls\.serverCa\.key\): is missing from the secret \(keys present: root\.crt\)/,
    ));

  it("GIVEN a value that is no PEM certificate THEN it says what it must hold", () =>
    refused(
      withCa({ "ca.crt": "not a certificate" }),
      /key "ca\.crt" .*: does not hold a PEM CA certificate/,
    ));

  it("GIVEN a private key beside the certificate THEN it is refused, the key never written into a ConfigMap", () =>
    refused(
      withCa({ "ca.crt": `${OFFLINE_CA_PEM}-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n` }),
      /key "ca\.crt" .*: holds a private key beside the certificate/,
    ));

  it("GIVEN its current version deleted THEN it says to write a new one", () =>
    refused(
      withCa(new DeletedVersion()),
      /key "ca\.crt" .*: cannot be read: the secret's current version is deleted/,
    ));

  it("GIVEN the credentials refused too THEN one message has both", async () => {
    const vault: VaultSource = (mount, name) => {
      const answer = withCa(undefined)(mount, name);
      if (answer === undefined || answer instanceof DeletedVersion) return answer;
      const data = { ...answer };
      delete data.exporter_password;
      return data;
    };
    await refused(
      vault,
      /^the stack cannot be deployed as it is \(2 refusals\):\n {2}- PgBouncer credentials refused[\s\S]*key "exporter_password"[\s\S]*\n {2}- the stack names an object[^\n]*\n {6}- Vault KV v2 .*tls\.serverCa\.path/,
    );
  });
});

describe("the StatefulSet depends on everything it mounts (the graph the engine orders a first up by)", () => {
  function dependencies(r: OfflineRun, type: string, name: string): readonly string[] {
    const found = r.registrations.filter((x) => x.type === type && x.name === name);
    assert.strictEqual(found.length, 1, `one ${type} ${name}`);
    return found[0].dependencies;
  }
  function urn(r: OfflineRun, type: string, name: string): string {
    const found = r.registrations.find((x) => x.type === type && x.name === name);
    assert.ok(found, `${type} ${name} registered`);
    return found.urn;
  }
  const DEPLOYMENT: [string, string] = ["kubernetes:apps/v1:StatefulSet", "pgbouncer-statefulset"];

  it("prod: the ini ConfigMap, the auth and exporter Secrets and the certificate's Secret, which waits for the certificate", async () => {
    const r = await run("prod");
    const deps = dependencies(r, ...DEPLOYMENT);
    for (const [type, name] of [
      ["kubernetes:core/v1:ConfigMap", "pgbouncer-config"],
      ["kubernetes:core/v1:Secret", "pgbouncer-auth"],
      ["kubernetes:core/v1:Secret", "pgbouncer-exporter"],
      ["kubernetes:core/v1:Secret", "pgbouncer-tls"],
    ]) {
      assert.ok(
        deps.includes(urn(r, type, name)),
        `the StatefulSet does not depend on ${name}:\n${deps.join("\n")}`,
      );
    }
    const tls = dependencies(r, "kubernetes:core/v1:Secret", "pgbouncer-tls");
    assert.ok(tls.includes(urn(r, VAULT_PKI_CERT_TYPE, "pgbouncer-client-cert")), tls.join("\n"));
  });

  it("a Vault-held server CA: its ConfigMap too", async () => {
    const r = await run("prod", {
      tls: {
        serverCa: { source: "vault", mount: "secret", path: "clipper/prod/postgres-ca", key: "ca.crt" },
      },
    });
    const deps = dependencies(r, ...DEPLOYMENT);
    assert.ok(deps.includes(urn(r, "kubernetes:core/v1:ConfigMap", "pgbouncer-server-ca")), deps.join("\n"));
  });
});
