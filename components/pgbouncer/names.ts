/**
 * The fixed names of what the component creates: the backend, the runbook and the e2e refer to them, so they
 * never change with a setting. (ConfigMaps and Secrets whose content the pods load at start are auto-named.)
 */

/** The Service's fixed name: the backend's DB_HOST points at it. */
export const SERVICE_NAME = "pgbouncer";
/** The Deployment's fixed name, for `kubectl rollout status deployment/pgbouncer` in the runbook. */
export const DEPLOYMENT_NAME = "pgbouncer";
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
