/**
 * The pooler's TLS objects: the client-facing certificate (issued by Vault PKI into a Secret the pod mounts,
 * or an existing Secret), the CA it is verified with, and the CA PostgreSQL is verified against.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import type { SecretInputs } from "../common";
import { serviceNames } from "./egress";
import { type CaRef, POOLER_CA_CONFIGMAP, SERVER_CA_CONFIGMAP, TLS_SECRET_NAME } from "./names";
import type { MountedKey } from "./pod-layout";
import { TLS_SECRET_KEYS } from "./tls-ini";
import type { CaSource, TlsSettings } from "./tls-settings";

/** The client-facing certificate as the pod and the backend see it. */
export interface ClientCertificate {
  /** The `kubernetes.io/tls` Secret the pod mounts. */
  readonly secretName: pulumi.Output<string>;
  /** Where the CA that signed it is, for the backend. */
  readonly ca: CaRef;
  /** The CA's PEM, when the program knows it (Vault PKI). */
  readonly caBundle?: pulumi.Output<string>;
  /** The certificate's expiry (Unix seconds), when the program issued it. */
  readonly expiresAt?: pulumi.Output<number>;
  /** The issued certificate (Vault PKI), for tests and the e2e. */
  readonly issued?: vault.pkisecret.SecretBackendCert;
}

/**
 * The client-facing certificate. Vault PKI: the program issues it (common name `dbHost`, every Service name
 * as a SAN) and a `pulumi up --refresh` re-issues it when less than `renewBeforeSeconds` of it remains (the provider's
 * `autoRenew`); it goes into the Secret `pgbouncer-tls` (`tls.crt` with the issuing CA after it, `tls.key`,
 * `ca.crt`) and its CA into the ConfigMap `pgbouncer-ca`. An existing Secret is used as it is.
 */
export function clientCertificate(
  name: string,
  args: {
    readonly tls: TlsSettings;
    readonly namespace: string;
    readonly service: string;
    readonly labels: Readonly<Record<string, string>>;
    /** Settings from Pulumi secrets: the request takes them as secrets. @default none */
    readonly secretInputs?: SecretInputs;
  },
  parent: pulumi.Resource,
): ClientCertificate | undefined {
  const c = args.tls.certificate;
  if (c === undefined) return undefined;
  if (c.source === "secret") {
    return {
      secretName: pulumi.output(c.name),
      ca: { kind: "Secret", name: c.name, key: TLS_SECRET_KEYS.ca },
    };
  }
  const names = serviceNames(args.service, args.namespace);
  // A setting from a Pulumi secret stays one in the request's inputs (state, previews).
  const input = (setting: string, value: string): pulumi.Input<string> =>
    args.secretInputs?.has(`tls.certificate.${setting}`) ? pulumi.secret(value) : value;
  const cert = new vault.pkisecret.SecretBackendCert(
    `${name}-client-cert`,
    {
      backend: input("mount", c.mount),
      name: input("role", c.role),
      commonName: names[names.length - 1],
      altNames: names,
      ttl: input("ttlSeconds", String(c.ttlSeconds)),
      autoRenew: true,
      minSecondsRemaining: c.renewBeforeSeconds,
    },
    { parent, additionalSecretOutputs: ["privateKey"] },
  );
  const meta = { namespace: args.namespace, labels: { ...args.labels } };
  const secret = new k8s.core.v1.Secret(
    `${name}-tls`,
    {
      metadata: { ...meta, name: TLS_SECRET_NAME },
      type: "kubernetes.io/tls",
      // Every value a Pulumi secret, as the policy pack requires of a Secret (only the key is sensitive).
      stringData: {
        [TLS_SECRET_KEYS.cert]: pulumi.secret(pulumi.interpolate`${cert.certificate}\n${cert.issuingCa}\n`),
        [TLS_SECRET_KEYS.key]: pulumi.secret(cert.privateKey),
        [TLS_SECRET_KEYS.ca]: pulumi.secret(cert.issuingCa),
      },
    },
    { parent },
  );
  new k8s.core.v1.ConfigMap(
    `${name}-ca`,
    { metadata: { ...meta, name: POOLER_CA_CONFIGMAP }, data: { [TLS_SECRET_KEYS.ca]: cert.issuingCa } },
    { parent },
  );
  return {
    // From the Secret's output, not the constant: the Deployment that mounts it then depends on it, so on a
    // first up it waits for the certificate (a PKI role that refuses the names fails the update before the
    // pods are created, instead of leaving them waiting on a missing volume until the rollout times out).
    secretName: secret.metadata.name,
    ca: { kind: "ConfigMap", name: POOLER_CA_CONFIGMAP, key: TLS_SECRET_KEYS.ca },
    caBundle: cert.issuingCa,
    expiresAt: cert.expiration,
    issued: cert,
  };
}

/** The server CA as the pod mounts it and as the backend finds it (for the direct route). */
export interface ServerCa {
  readonly mount: MountedKey;
  readonly ca: CaRef;
  /** The PEM, when the program read it (from Vault). */
  readonly caBundle?: pulumi.Output<string>;
}

/**
 * The CA PostgreSQL is verified against. A Vault-held CA is copied into the ConfigMap `pgbouncer-server-ca`:
 * `pem` is its PEM, read (and checked) before anything was registered (./vault-reads.ts `readServerCa`).
 */
export function serverCa(
  name: string,
  source: CaSource | undefined,
  args: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> },
  parent: pulumi.Resource,
  pem?: string,
): ServerCa | undefined {
  if (source === undefined) return undefined;
  if (source.source !== "vault") {
    const kind = source.source === "configmap" ? "ConfigMap" : "Secret";
    return {
      mount: {
        kind: source.source === "configmap" ? "configMap" : "secret",
        name: source.name,
        key: source.key,
      },
      ca: { kind, name: source.name, key: source.key },
    };
  }
  if (pem === undefined) {
    // A bug, not a setting: the program reads the PEM before it builds the component.
    throw new pulumi.ResourceError("tls.serverCa is held in Vault, but its PEM was not read first", parent);
  }
  const cm = new k8s.core.v1.ConfigMap(
    `${name}-server-ca`,
    {
      metadata: { namespace: args.namespace, labels: { ...args.labels }, name: SERVER_CA_CONFIGMAP },
      data: { [TLS_SECRET_KEYS.ca]: pem },
    },
    { parent },
  );
  return {
    // Named from the ConfigMap's output: the Deployment that mounts it depends on it (as on the TLS Secret).
    mount: { kind: "configMap", name: cm.metadata.name, key: TLS_SECRET_KEYS.ca },
    ca: { kind: "ConfigMap", name: SERVER_CA_CONFIGMAP, key: TLS_SECRET_KEYS.ca },
    caBundle: pulumi.output(pem),
  };
}
