import type * as pulumi from "@pulumi/pulumi";
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
 * `protect`, which refuses the destroy until the runbook's rollback (`route: direct`, `pulumi up`) has run,
 * and `guard` (the {@link DESTROY_GUARD_HOOK} hook, where the engine runs hooks), which says so first.
 */
export function patchOptions(
  route: BackendRouteTarget,
  guard?: pulumi.ResourceHook,
): { protect: boolean; retainOnDelete: true; hooks?: pulumi.ResourceHookBinding } {
  const guarded = route === "pgbouncer";
  return {
    protect: guarded,
    retainOnDelete: true,
    ...(guarded && guard ? { hooks: { beforeDelete: [guard] } } : {}),
  };
}

/**
 * The patches' delete hook while the route is `pgbouncer`. `pulumi destroy` runs no program, so the engine
 * refuses a stack with delete hooks before it deletes anything, naming the hook ("Resource has delete hooks
 * registered, but the program is not running. Hooks: clipper-roll-back-before-destroy"); with
 * `--run-program` the hook runs and fails with {@link DESTROY_GUARD_MESSAGE}. Either way the first words are
 * the program's, before Pulumi's own protect message, which suggests `pulumi state unprotect`: the one move
 * that leaves the backend pointing at a deleted pooler.
 */
export const DESTROY_GUARD_HOOK = "clipper-roll-back-before-destroy";

/** What the hook says when a destroy reaches a patch while the backend still uses the pooler. */
export const DESTROY_GUARD_MESSAGE =
  "the backend still points at this pooler (backend.route is pgbouncer), and deleting the pooler now would " +
  "leave its DB_HOST/DB_PORT on a Service that no longer exists. Roll back first: `pulumi config set --path " +
  "backend.route direct`, `pulumi up`, then `pulumi destroy` (docs/runbook.md, Decommission). Do not run " +
  "`pulumi state unprotect`: it removes the protection, not the backend's dependency on the pooler.";

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
