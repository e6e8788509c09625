import type { Login } from "../credentials";
/**
 * The pure core of the backend switch: which endpoint each route gives the backend, the two ConfigMap keys,
 * the pod template annotation that rolls the backend, and the URLs published as stack outputs.
 */
import type { BackendRouteSettings, BackendRouteTarget } from "./settings";

/** A database endpoint as the backend sees it. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** Pod template annotation of the backend Deployment; its value changes exactly when the route does. */
export const ROUTE_ANNOTATION = "clipper.io/db-route";
/**
 * Server-side apply field manager of both patches, fixed so that `kubectl get --show-managed-fields` names
 * this program as the owner of the keys it writes (the provider would pick a random one per patch).
 */
export const FIELD_MANAGER = "clipper-pgbouncer";

/** The endpoint `route` sends the backend to. */
export function routeEndpoint(route: BackendRouteTarget, pooler: Endpoint, database: Endpoint): Endpoint {
  return route === "pgbouncer" ? pooler : database;
}

/** The ConfigMap keys the patch owns (ConfigMap values are strings). */
export function backendConfigData(
  s: Pick<BackendRouteSettings, "hostKey" | "portKey">,
  endpoint: Endpoint,
): Record<string, string> {
  return { [s.hostKey]: endpoint.host, [s.portKey]: String(endpoint.port) };
}

/** `<route>/<host>:<port>`: a new value, and so a rollout, whenever the route or its endpoint changes. */
export function routeAnnotationValue(route: BackendRouteTarget, endpoint: Endpoint): string {
  return `${route}/${endpoint.host}:${endpoint.port}`;
}

/**
 * Annotations of both patches: a fixed field manager, and `pulumi.com/patchForce` when the stack takes over
 * keys another manager holds (see `BackendRouteSettings.forceConflicts`).
 */
export function patchAnnotations(forceConflicts: boolean): Record<string, string> {
  return {
    "pulumi.com/patchFieldManager": FIELD_MANAGER,
    ...(forceConflicts ? { "pulumi.com/patchForce": "true" } : {}),
  };
}

/**
 * Resource options of both patches. Deleting a patch releases its fields under server-side apply, and the
 * backend team's manager lost them when the stack took them over, so a real API server would drop DB_HOST
 * and DB_PORT from the ConfigMap altogether: hence `retainOnDelete`, which leaves them as they are. Left as
 * they are while `route` is `pgbouncer`, they would point at the pooler `pulumi destroy` deletes: hence
 * `protect`, which refuses the destroy until the runbook's rollback (`route: direct`, `pulumi up`) has run.
 */
export function patchOptions(route: BackendRouteTarget): { protect: boolean; retainOnDelete: true } {
  return { protect: route === "pgbouncer", retainOnDelete: true };
}

/** `postgres://user:password@host:port/database`, user and password percent-encoded. */
export function connectionUrl(login: Login, endpoint: Endpoint, database: string): string {
  return (
    `postgres://${encodeURIComponent(login.user)}:${encodeURIComponent(login.password)}` +
    `@${endpoint.host}:${endpoint.port}/${encodeURIComponent(database)}`
  );
}

/** The exporter's metrics URL behind the pooler Service. */
export function metricsEndpoint(host: string, metricsPort: number): string {
  return `http://${host}:${metricsPort}/metrics`;
}
