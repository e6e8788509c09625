import { ConfigReader, DNS_LABEL } from "../common";

/** Where the backend's database connections go. */
export type BackendRouteTarget = "pgbouncer" | "direct";
export const ROUTE_TARGETS: readonly BackendRouteTarget[] = ["pgbouncer", "direct"];

/**
 * The backend's existing objects this program patches (config key `backend`). The backend team owns them;
 * this program owns exactly the two keys and one pod template annotation it writes.
 */
export interface BackendRouteSettings {
  /**
   * `pgbouncer` points the backend at the pooler Service; `direct` points it back at PostgreSQL
   * (`database.host`/`database.port`). Setting `direct` and running `pulumi up` is the rollback, emergency
   * or graceful. @default pgbouncer
   */
  readonly route: BackendRouteTarget;
  /** Namespace of the backend's ConfigMap and Deployment. @default the pooler's namespace (`namespace`) */
  readonly namespace?: string;
  /** The backend's ConfigMap that holds its database settings. @default backend-config */
  readonly configMapName: string;
  /** The backend's Deployment, rolled when the route changes. @default clipper-backend */
  readonly deploymentName: string;
  /** ConfigMap key of the database host. @default DB_HOST */
  readonly hostKey: string;
  /** ConfigMap key of the database port. @default DB_PORT */
  readonly portKey: string;
  /**
   * Take over the two keys and the annotation even when another field manager (a `kubectl patch`, the
   * backend team's own apply) owns them (`pulumi.com/patchForce`). A rollback must not stop on a conflict,
   * hence the default; with `false` a conflict stops `pulumi up` and names the other manager.
   * @default true
   */
  readonly forceConflicts: boolean;
}

export const BACKEND_ROUTE_DEFAULTS: BackendRouteSettings = {
  route: "pgbouncer",
  configMapName: "backend-config",
  deploymentName: "clipper-backend",
  hostKey: "DB_HOST",
  portKey: "DB_PORT",
  forceConflicts: true,
};

/** RFC 1123 subdomain: ConfigMap and Deployment names. */
const OBJECT_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** What Kubernetes accepts as a ConfigMap key that is also an environment variable name (`envFrom`). */
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function readBackendRoute(r: ConfigReader): BackendRouteSettings {
  const d = BACKEND_ROUTE_DEFAULTS;
  const s: BackendRouteSettings = {
    route: r.oneOf("route", d.route, ROUTE_TARGETS),
    ...(r.has("namespace")
      ? {
          namespace: r.string(
            "namespace",
            undefined,
            DNS_LABEL,
            "a Kubernetes namespace name (RFC 1123 label)",
          ),
        }
      : {}),
    configMapName: r.string("configMapName", d.configMapName, OBJECT_NAME, "a Kubernetes object name"),
    deploymentName: r.string("deploymentName", d.deploymentName, OBJECT_NAME, "a Kubernetes object name"),
    hostKey: r.string("hostKey", d.hostKey, ENV_KEY, "an environment variable name such as DB_HOST"),
    portKey: r.string("portKey", d.portKey, ENV_KEY, "an environment variable name such as DB_PORT"),
    forceConflicts: r.bool("forceConflicts", d.forceConflicts),
  };
  r.rejectUnknown();
  if (s.hostKey === s.portKey) {
    r.issues.add(`${r.key}.portKey`, `is "${s.portKey}"; must differ from ${r.key}.hostKey`);
  }
  return s;
}
