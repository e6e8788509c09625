/**
 * What the backend needs to verify what its DB_HOST points at, on either route: the stack outputs
 * `sslMode`, `caRef` and `caBundle`.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { CaRef } from "./names";
import type { TlsSettings } from "./tls-settings";

export interface BackendTls {
  readonly sslMode: string;
  readonly caRef?: CaRef;
  readonly caBundle?: pulumi.Output<string>;
}

/** A CA the pooler knows: where it lives, and its PEM when the program read or issued it. */
export interface KnownCa {
  readonly ca: CaRef;
  readonly caBundle?: pulumi.Output<string>;
}

/**
 * The backend's TLS for `route`: through the pooler, `verify-full` against the pooler's CA (every Service
 * name is in its certificate) whenever the pooler serves TLS; direct, what PgBouncer itself uses towards
 * PostgreSQL, so that a rollback keeps the database leg's verification. `pooler` is the PgBouncer
 * component (its client certificate and server CA).
 */
export function backendTls(
  route: "pgbouncer" | "direct",
  tls: Pick<TlsSettings, "serverSslMode">,
  pooler: { readonly certificate?: KnownCa; readonly serverCa?: KnownCa },
): BackendTls {
  if (route === "pgbouncer") {
    const c = pooler.certificate;
    if (c === undefined) return { sslMode: "disable" };
    return { sslMode: "verify-full", caRef: c.ca, ...(c.caBundle ? { caBundle: c.caBundle } : {}) };
  }
  const s = pooler.serverCa;
  return {
    sslMode: tls.serverSslMode,
    ...(s ? { caRef: s.ca, ...(s.caBundle ? { caBundle: s.caBundle } : {}) } : {}),
  };
}
