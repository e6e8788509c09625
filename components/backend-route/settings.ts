import { DNS_LABEL, DNS_NAME, type Infer, bool, defaultsOf, oneOf, section, string } from "../common";

/** Where the backend's database connections go. */
export const ROUTE_TARGETS = ["pgbouncer", "direct"] as const;
export type BackendRouteTarget = (typeof ROUTE_TARGETS)[number];

/** What Kubernetes accepts as a ConfigMap key that is also an environment variable name (`envFrom`). */
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const objectName = (def: string) => string(DNS_NAME, "a Kubernetes object name").default(def);

/**
 * The backend's existing objects this program patches (config key `backend`). The backend team owns them;
 * this program owns exactly the two keys and one pod template annotation it writes.
 */
export const BACKEND_ROUTE = section(
  {
    /**
     * `pgbouncer` points the backend at the pooler Service; `direct` points it back at PostgreSQL
     * (`database.host`/`database.port`). Setting `direct` and running `pulumi up` is the rollback, emergency
     * or graceful. @default pgbouncer
     */
    route: oneOf(ROUTE_TARGETS).default("pgbouncer"),
    /** Namespace of the backend's ConfigMap and Deployment. @default the pooler's namespace (`namespace`) */
    namespace: string(DNS_LABEL, "a Kubernetes namespace name (RFC 1123 label)").optional(),
    /** The backend's ConfigMap that holds its database settings. @default backend-config */
    configMapName: objectName("backend-config"),
    /** The backend's Deployment, rolled when the route changes. @default clipper-backend */
    deploymentName: objectName("clipper-backend"),
    /** ConfigMap key of the database host. @default DB_HOST */
    hostKey: string(ENV_KEY, "an environment variable name such as DB_HOST").default("DB_HOST"),
    /** ConfigMap key of the database port. @default DB_PORT */
    portKey: string(ENV_KEY, "an environment variable name such as DB_PORT").default("DB_PORT"),
    /**
     * Take over the two keys and the annotation even when another field manager (a `kubectl patch`, the
     * backend team's own apply) owns them (`pulumi.com/patchForce`). A rollback must not stop on a conflict,
     * hence the default; with `false` a conflict stops `pulumi up` and names the other manager.
     * @default true
     */
    forceConflicts: bool().default(true),
  },
  {
    check: (s, c) => {
      if (s.hostKey === s.portKey)
        c.add("portKey", `is "${s.portKey}"; must differ from ${c.key("hostKey")}`);
    },
  },
).landsIn("the backend's ConfigMap and Deployment (the patches)");
export type BackendRouteSettings = Infer<typeof BACKEND_ROUTE.shape>;
export const BACKEND_ROUTE_DEFAULTS = defaultsOf(BACKEND_ROUTE);
