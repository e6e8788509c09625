/**
 * TLS on both legs: what a stack sets (config key `tls`), the files the pod mounts, and the ini lines they
 * become. Client → PgBouncer is served with a certificate from Vault PKI or from an existing Secret;
 * PgBouncer → PostgreSQL verifies the server against a CA from a ConfigMap, a Secret or a Vault key.
 */
import { ConfigReader, DNS_NAME } from "../common";

/** `client_tls_sslmode` values this program serves. The `verify-*` ones would demand client certificates. */
export const CLIENT_SSL_MODES = ["disable", "allow", "prefer", "require"] as const;
export type ClientSslMode = (typeof CLIENT_SSL_MODES)[number];
/** `server_tls_sslmode` values, weakest first (libpq's order). */
export const SERVER_SSL_MODES = [
  "disable",
  "allow",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
] as const;
export type ServerSslMode = (typeof SERVER_SSL_MODES)[number];
/** Protocols PgBouncer may speak; older ones are refused. */
export const TLS_PROTOCOLS = ["tlsv1.2", "tlsv1.3"] as const;

/** Where the client-facing certificate comes from. */
export type CertificateSource =
  | {
      /** The program issues it with Vault's PKI engine (`@pulumi/vault` `pkiSecret.SecretBackendCert`). */
      readonly source: "vault-pki";
      /** Mount of the PKI secrets engine. @default pki */
      readonly mount: string;
      /** The PKI role that issues it; it must allow the Service's names. @default clipper-pgbouncer */
      readonly role: string;
      /** Validity asked for. @default 2592000 (30 days) */
      readonly ttlSeconds: number;
      /**
       * A `pulumi up --refresh` re-issues the certificate when less than this validity remains (the provider's
       * `min_seconds_remaining`). @default 864000 (10 days)
       */
      readonly renewBeforeSeconds: number;
    }
  | {
      /** An existing `kubernetes.io/tls` Secret with `tls.crt`, `tls.key` and `ca.crt` (e.g. cert-manager's). */
      readonly source: "secret";
      readonly name: string;
    };

/** Where the CA that signed PostgreSQL's certificate comes from. */
export type CaSource =
  | { readonly source: "configmap" | "secret"; readonly name: string; readonly key: string }
  | { readonly source: "vault"; readonly mount: string; readonly path: string; readonly key: string };

export interface TlsSettings {
  /** `client_tls_sslmode`: what PgBouncer asks of its clients. @default require */
  readonly clientSslMode: ClientSslMode;
  /** The certificate PgBouncer serves; absent when `clientSslMode` is `disable`. */
  readonly certificate?: CertificateSource;
  /** `server_tls_sslmode`: how PgBouncer checks PostgreSQL. @default verify-full */
  readonly serverSslMode: ServerSslMode;
  /** The CA PostgreSQL's certificate is verified against; required for `verify-ca` and `verify-full`. */
  readonly serverCa?: CaSource;
  /** `client_tls_protocols` and `server_tls_protocols`, pinned. @default tlsv1.2,tlsv1.3 */
  readonly protocols: string;
  /**
   * How often the PgBouncer container looks for a renewed certificate (the kubelet swaps the mounted
   * Secret's files) and reloads PgBouncer, which keeps open connections. @default 10
   */
  readonly reloadCheckSeconds: number;
}

export const PKI_DEFAULTS = {
  source: "vault-pki",
  mount: "pki",
  role: "clipper-pgbouncer",
  ttlSeconds: 30 * 86400,
  renewBeforeSeconds: 10 * 86400,
} as const satisfies CertificateSource;

export const TLS_DEFAULTS: TlsSettings = {
  clientSslMode: "require",
  certificate: PKI_DEFAULTS,
  serverSslMode: "verify-full",
  protocols: TLS_PROTOCOLS.join(","),
  reloadCheckSeconds: 10,
};

/** The weakest `server_tls_sslmode` a prod stack may run (the policy pack refuses less). */
export const PROD_MIN_SERVER_SSL_MODE: ServerSslMode = "verify-ca";
/** The weakest `client_tls_sslmode` a prod stack may run. */
export const PROD_MIN_CLIENT_SSL_MODE: ClientSslMode = "require";

/** Whether `mode` verifies the server's certificate (and so needs a CA). */
export function verifiesServer(mode: ServerSslMode): boolean {
  return mode === "verify-ca" || mode === "verify-full";
}

/** Whether `mode` is at least `min` in libpq's order. */
export function atLeast<T extends string>(order: readonly T[], mode: T, min: T): boolean {
  return order.indexOf(mode) >= order.indexOf(min);
}

const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const VAULT_PATH = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

function readCertificate(r: ConfigReader): CertificateSource {
  const source = r.oneOf<CertificateSource["source"]>("source", PKI_DEFAULTS.source, ["vault-pki", "secret"]);
  if (source === "secret") {
    const c: CertificateSource = {
      source,
      name: r.string("name", undefined, DNS_NAME, "the name of a Secret with tls.crt, tls.key and ca.crt"),
    };
    r.rejectUnknown();
    return c;
  }
  const d = PKI_DEFAULTS;
  const c = {
    source,
    mount: r.string("mount", d.mount, VAULT_PATH, "a Vault mount path"),
    role: r.string("role", d.role, /^[A-Za-z0-9_.-]+$/, "a Vault PKI role name"),
    ttlSeconds: r.int("ttlSeconds", d.ttlSeconds, { min: 3600, max: 366 * 86400 }),
    renewBeforeSeconds: r.int("renewBeforeSeconds", d.renewBeforeSeconds, { min: 60, max: 365 * 86400 }),
  } as const;
  r.rejectUnknown();
  if (c.renewBeforeSeconds >= c.ttlSeconds) {
    r.issues.add(
      `${r.key}.renewBeforeSeconds`,
      `is ${c.renewBeforeSeconds}; must be below ${r.key}.ttlSeconds (${c.ttlSeconds}), or every ` +
        `pulumi up re-issues the certificate`,
    );
  }
  return c;
}

function readCa(r: ConfigReader): CaSource {
  const source = r.oneOf<CaSource["source"]>("source", "configmap", ["configmap", "secret", "vault"]);
  const key = r.string("key", "ca.crt", SECRET_KEY, "a ConfigMap, Secret or Vault key");
  let ca: CaSource;
  if (source === "vault") {
    ca = {
      source,
      mount: r.string("mount", undefined, VAULT_PATH, "a Vault KV v2 mount path"),
      path: r.string("path", undefined, VAULT_PATH, "a Vault KV v2 secret path"),
      key,
    };
  } else {
    ca = { source, name: r.string("name", undefined, DNS_NAME, `the ${source}'s name`), key };
  }
  r.rejectUnknown();
  return ca;
}

/** Reads the `tls` section. Weaker settings are allowed here and refused for prod by the policy pack. */
export function readTls(r: ConfigReader): TlsSettings {
  const d = TLS_DEFAULTS;
  const clientSslMode = r.oneOf("clientSslMode", d.clientSslMode, [...CLIENT_SSL_MODES]);
  const serverSslMode = r.oneOf("serverSslMode", d.serverSslMode, [...SERVER_SSL_MODES]);
  const protocols = r.string(
    "protocols",
    d.protocols,
    /^[a-z0-9.,]+$/,
    "a comma-separated list of TLS versions",
  );
  const reloadCheckSeconds = r.int("reloadCheckSeconds", d.reloadCheckSeconds, { min: 1, max: 300 });
  const hasCertificate = r.has("certificate");
  const certificate = readCertificate(r.child("certificate"));
  const hasCa = r.has("serverCa");
  const serverCa = hasCa ? readCa(r.child("serverCa")) : undefined;
  r.rejectUnknown();
  const list = protocols.split(",");
  const unknown = list.filter((p) => !(TLS_PROTOCOLS as readonly string[]).includes(p));
  if (unknown.length > 0 || new Set(list).size !== list.length) {
    r.issues.add(
      `${r.key}.protocols`,
      `is "${protocols}"; must list each of ${TLS_PROTOCOLS.join(", ")} at most once (older protocols ` +
        `are refused)`,
    );
  }
  if (clientSslMode === "disable" && hasCertificate) {
    r.issues.add(
      `${r.key}.certificate`,
      `is set while ${r.key}.clientSslMode is "disable"; remove it, or serve TLS to clients`,
    );
  }
  if (verifiesServer(serverSslMode) && !serverCa) {
    r.issues.add(
      `${r.key}.serverCa`,
      `is required when ${r.key}.serverSslMode is "${serverSslMode}": the CA that signed PostgreSQL's ` +
        `certificate, as {source: configmap|secret, name, key} or {source: vault, mount, path, key}`,
    );
  }
  if (serverSslMode === "disable" && hasCa) {
    r.issues.add(`${r.key}.serverCa`, `is set while ${r.key}.serverSslMode is "disable"; remove one of them`);
  }
  return {
    clientSslMode,
    ...(clientSslMode === "disable" ? {} : { certificate }),
    serverSslMode,
    ...(serverCa ? { serverCa } : {}),
    protocols,
    reloadCheckSeconds,
  };
}

/**
 * Where the pod mounts the TLS files: one projected volume (no subPath, so the kubelet updates it, and one
 * `..data` link that changes whenever any of its sources does) with the client certificate, its key and the
 * server CA.
 */
const TLS_DIR = "/etc/pgbouncer/tls";
export const TLS_PATHS = {
  dir: TLS_DIR,
  certFile: `${TLS_DIR}/tls.crt`,
  keyFile: `${TLS_DIR}/tls.key`,
  serverCaFile: `${TLS_DIR}/server-ca.crt`,
} as const;

/** Keys of a `kubernetes.io/tls` Secret (and cert-manager's `ca.crt`). */
export const TLS_SECRET_KEYS = { cert: "tls.crt", key: "tls.key", ca: "ca.crt" } as const;

/** What the ini says about TLS: modes, file paths and protocols of each leg. */
export interface IniTls {
  readonly client: {
    readonly sslmode: ClientSslMode;
    readonly certFile: string;
    readonly keyFile: string;
    readonly protocols: string;
  };
  readonly server: { readonly sslmode: ServerSslMode; readonly caFile?: string; readonly protocols: string };
}

/** The ini's TLS input of a pod (files at {@link TLS_PATHS}). */
export function podIniTls(tls: TlsSettings): IniTls {
  return {
    client: {
      sslmode: tls.clientSslMode,
      certFile: TLS_PATHS.certFile,
      keyFile: TLS_PATHS.keyFile,
      protocols: tls.protocols,
    },
    server: {
      sslmode: tls.serverSslMode,
      ...(tls.serverCa ? { caFile: TLS_PATHS.serverCaFile } : {}),
      protocols: tls.protocols,
    },
  };
}

/** The `[pgbouncer]` parameters of `tls`: the modes always (PgBouncer's own defaults are the weak ones). */
export function tlsParameters(tls: IniTls): [string, string][] {
  const params: [string, string][] = [["client_tls_sslmode", tls.client.sslmode]];
  if (tls.client.sslmode !== "disable") {
    params.push(
      ["client_tls_cert_file", tls.client.certFile],
      ["client_tls_key_file", tls.client.keyFile],
      ["client_tls_protocols", tls.client.protocols],
    );
  }
  params.push(["server_tls_sslmode", tls.server.sslmode]);
  if (tls.server.sslmode !== "disable") {
    if (tls.server.caFile !== undefined) params.push(["server_tls_ca_file", tls.server.caFile]);
    params.push(["server_tls_protocols", tls.server.protocols]);
  }
  return params;
}
