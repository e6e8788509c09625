/**
 * The fixed names of what the component creates: the backend, the runbook and the e2e refer to them, so they
 * never change with a setting. (The fleet's names, StatefulSet and headless Services: ./fleet.ts. The
 * exporters' Secret, which the pods read at start, is auto-named and replaced on a change.)
 */

/** The Service's fixed name: the backend's DB_HOST points at it. */
export const SERVICE_NAME = "pgbouncer";
/**
 * The ConfigMap with the shared ini and the Secret with the auth file: updated in place and reloaded by the
 * pods, so a change of a reloadable setting or of a password rolls nothing.
 */
export const AUTH_CONFIG_NAMES = { config: "pgbouncer-config", auth: "pgbouncer-auth" } as const;
/** The fixed name of the Secret a Vault-issued certificate lives in: a renewal changes its data, not its name. */
export const TLS_SECRET_NAME = "pgbouncer-tls";
/** The ConfigMap with the pooler's CA (`ca.crt`), for the backend to verify the pooler with. */
export const POOLER_CA_CONFIGMAP = "pgbouncer-ca";
/** The ConfigMap a Vault-held server CA is copied into, for the pod to mount. */
export const SERVER_CA_CONFIGMAP = "pgbouncer-server-ca";

/** Where a CA lives in the cluster: what a client mounts to verify with it. */
export interface CaRef {
  readonly kind: "ConfigMap" | "Secret";
  readonly name: string;
  readonly key: string;
}
