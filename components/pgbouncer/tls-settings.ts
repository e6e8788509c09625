/**
 * TLS on both legs, as a stack sets it (config key `tls`). Client → PgBouncer is served with a certificate
 * from Vault PKI or from an existing Secret; PgBouncer → PostgreSQL verifies the server against a CA from a
 * ConfigMap, a Secret or a Vault key. What the pod and its ini make of it: ./tls-ini.ts.
 */
import {
  DNS_NAME,
  type Infer,
  VAULT_PATH,
  type WithOptional,
  int,
  oneOf,
  section,
  string,
  variants,
} from "../common";

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

/** Where these settings are written in plaintext (a value from a Pulumi secret is refused there). */
const INI = "pgbouncer.ini, in the pooler's ConfigMap";
const TLS_VOLUME = "the pooler's Deployment (its TLS volume)";
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const caKey = () => string(SECRET_KEY, "a ConfigMap, Secret or Vault key").default("ca.crt");

const TLS_FIELDS = {
  /** `client_tls_sslmode`: what PgBouncer asks of its clients. @default require */
  clientSslMode: oneOf(CLIENT_SSL_MODES).default("require"),
  /**
   * The certificate PgBouncer serves; absent when `clientSslMode` is `disable`. `vault-pki`: the program
   * issues it with Vault's PKI engine (`@pulumi/vault` `pkiSecret.SecretBackendCert`); `secret`: an existing
   * `kubernetes.io/tls` Secret with `tls.crt`, `tls.key` and `ca.crt` (e.g. cert-manager's).
   * @default vault-pki, with the defaults of its fields
   */
  certificate: variants(
    "source",
    {
      "vault-pki": section(
        {
          /** Mount of the PKI secrets engine. @default pki */
          mount: string(VAULT_PATH, "a Vault mount path").default("pki").secretInput(),
          /** The PKI role that issues it; it must allow the Service's names. @default clipper-pgbouncer */
          role: string(/^[A-Za-z0-9_.-]+$/, "a Vault PKI role name")
            .default("clipper-pgbouncer")
            .secretInput(),
          /** Validity asked for. @default 2592000 (30 days) */
          ttlSeconds: int(3600, 366 * 86400)
            .default(30 * 86400)
            .secretInput(),
          /**
           * A `pulumi up --refresh` re-issues the certificate when less than this validity remains (the
           * provider's `min_seconds_remaining`). @default 864000 (10 days)
           */
          renewBeforeSeconds: int(60, 365 * 86400)
            .default(10 * 86400)
            .landsIn("the certificate's expiry alerts (a PrometheusRule or the rules ConfigMap)"),
        },
        {
          check: (cert, c) => {
            if (cert.renewBeforeSeconds >= cert.ttlSeconds) {
              c.add(
                "renewBeforeSeconds",
                `is ${cert.renewBeforeSeconds}; must be below ${c.key("ttlSeconds")} (${cert.ttlSeconds}), ` +
                  `or every pulumi up re-issues the certificate`,
              );
            }
          },
        },
      ),
      secret: section({
        name: string(DNS_NAME, "the name of a Secret with tls.crt, tls.key and ca.crt"),
      }),
    },
    "vault-pki",
  ).landsIn(TLS_VOLUME),
  /** `server_tls_sslmode`: how PgBouncer checks PostgreSQL. @default verify-full */
  serverSslMode: oneOf(SERVER_SSL_MODES).default("verify-full"),
  /**
   * The CA PostgreSQL's certificate is verified against; required for `verify-ca` and `verify-full`.
   * `configmap` or `secret`: that object, in the pooler's namespace; `vault`: a KV v2 key, which the program
   * copies into a ConfigMap. @default unset
   */
  serverCa: variants(
    "source",
    {
      configmap: section({ name: string(DNS_NAME, "the configmap's name"), key: caKey() }),
      secret: section({ name: string(DNS_NAME, "the secret's name"), key: caKey() }),
      // Read from Vault, never written: the ConfigMap gets the PEM, not where it came from.
      vault: section({
        mount: string(VAULT_PATH, "a Vault KV v2 mount path").notWritten(),
        path: string(VAULT_PATH, "a Vault KV v2 secret path").notWritten(),
        key: caKey().notWritten(),
      }),
    },
    "configmap",
  )
    .optional()
    .landsIn(TLS_VOLUME),
  /** `client_tls_protocols` and `server_tls_protocols`, pinned. @default tlsv1.2,tlsv1.3 */
  protocols: string(/^[a-z0-9.,]+$/, "a comma-separated list of TLS versions").default(
    TLS_PROTOCOLS.join(","),
  ),
};

type TlsRead = Infer<typeof TLS_FIELDS>;
export type TlsSettings = WithOptional<TlsRead, "certificate">;
/** Where the client-facing certificate comes from. */
export type CertificateSource = TlsRead["certificate"];
/** Where the CA that signed PostgreSQL's certificate comes from. */
export type CaSource = NonNullable<TlsRead["serverCa"]>;

/** The `tls` section. Weaker settings are allowed here and refused for prod by the policy pack. */
export const TLS = section(TLS_FIELDS, {
  check: (t, c) => {
    const list = t.protocols.split(",");
    const unknown = list.filter((p) => !(TLS_PROTOCOLS as readonly string[]).includes(p));
    if (unknown.length > 0 || new Set(list).size !== list.length) {
      c.add(
        "protocols",
        `is "${t.protocols}"; must list each of ${TLS_PROTOCOLS.join(", ")} at most once (older protocols ` +
          `are refused)`,
      );
    }
    if (t.clientSslMode === "disable" && c.has("certificate")) {
      c.add(
        "certificate",
        `is set while ${c.key("clientSslMode")} is "disable"; remove it, or serve TLS to clients`,
      );
    }
    if (verifiesServer(t.serverSslMode) && !t.serverCa) {
      c.add(
        "serverCa",
        `is required when ${c.key("serverSslMode")} is "${t.serverSslMode}": the CA that signed PostgreSQL's ` +
          `certificate, as {source: configmap|secret, name, key} or {source: vault, mount, path, key}`,
      );
    }
    if (t.serverSslMode === "disable" && c.has("serverCa")) {
      c.add("serverCa", `is set while ${c.key("serverSslMode")} is "disable"; remove one of them`);
    }
  },
  // No certificate without client TLS.
  finish: (t): TlsSettings => {
    if (t.clientSslMode !== "disable") return t;
    const rest: { -readonly [K in keyof TlsSettings]: TlsSettings[K] } = { ...t };
    delete rest.certificate;
    return rest;
  },
}).landsIn(INI);
