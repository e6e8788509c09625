/**
 * What the pod and its pgbouncer.ini make of the TLS settings (./tls-settings.ts): where the pod mounts the
 * files, and the ini lines of each leg.
 */
import type { ClientSslMode, ServerSslMode, TlsSettings } from "./tls-settings";

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
