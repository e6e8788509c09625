/**
 * Where and as whom the harness's clients connect: what the wire client (pgwire.ts) is given, and libpq through
 * its environment (postgres.ts).
 */

/** Where and as whom a client connects. */
export interface Conn {
  /** A host name, an address, or a unix socket directory (an absolute path). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly password?: string;
  /**
   * TLS as libpq's sslmode says it. @default sslmode `prefer`, libpq's own default: TLS wherever the server
   * offers it (the stacks' PgBouncer requires it), nothing verified
   */
  readonly tls?: ClientTls;
}

/** A client's TLS settings, libpq's words (`sslmode`, `sslrootcert`). */
export interface ClientTls {
  /**
   * `disable`: no SSLRequest. `prefer`: TLS if the server offers it, nothing verified (libpq's default).
   * `require`: TLS, nothing verified. `verify-ca`: the chain against
   * `rootCertFile`. `verify-full`: the chain and the host name.
   */
  readonly sslmode: "disable" | "prefer" | "require" | "verify-ca" | "verify-full";
  /** The CA bundle to verify against (`PGSSLROOTCERT`). Required for verify-ca and verify-full. */
  readonly rootCertFile?: string;
  /**
   * The name verified against the certificate's SANs under verify-full, while the client still connects
   * to `host` (libpq: `host` = this name, `hostaddr` = `Conn.host`). @default `Conn.host`
   */
  readonly hostname?: string;
  /**
   * How a cancel request travels: `plain`, as libpq's PQcancel does (every release, and the only way up to
   * libpq 16, the psql here), or inside TLS, as libpq 17's PQcancelCreate does. @default plain
   */
  readonly cancel?: "plain" | "tls";
}
