/**
 * What the pod and its pgbouncer.ini make of the TLS settings (./tls-settings.ts): where the pod mounts the
 * files, and the ini lines of each leg.
 */
import type { ClientSslMode, ServerSslMode } from "./tls-settings";

/**
 * The TLS files' names, in the projected volume the pod mounts (no subPath, so the kubelet updates it, and
 * one `..data` link that changes whenever any of its sources does) and in each generation its script
 * validates: the client certificate, its key and the server CA.
 */
export const TLS_FILE_NAMES = { cert: "tls.crt", key: "tls.key", serverCa: "server-ca.crt" } as const;

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

/** The `[pgbouncer]` parameters of `tls`: the modes always (PgBouncer's own defaults are the weak ones). */
export function tlsParameters(tls: IniTls): [string, string][] {
  const params: [string, string][] = [["client_tls_sslmode", tls.client.sslmode]];
  if (tls.client.sslmode !== "disable") {
    params.push(
      ["client_tls_cert_file", tls.client.certFile],
      ["client_tls_key_file", tls.client.keyFile],
      // The client CAs. Below verify-ca PgBouncer still asks for an optional client certificate, naming these
      // CAs, and verifies one sent against them; no login here depends on it. Unset, they are the image's
      // whole system bundle: 143 names in every client's handshake, and most of a start's CPU (docs/settings.md,
      // TLS note 1). The pod's own certificate trusts no other issuer.
      ["client_tls_ca_file", tls.client.certFile],
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
