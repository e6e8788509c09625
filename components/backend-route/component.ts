import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  type Endpoint,
  ROUTE_ANNOTATION,
  DESTROY_GUARD_HOOK,
  DESTROY_GUARD_MESSAGE,
  backendConfigData,
  patchAnnotations,
  patchOptions,
  routeAnnotationValue,
  routeEndpoint,
} from "./route";
import type { BackendRouteSettings, BackendRouteTarget } from "./settings";

/**
 * The patches' delete hook, registered once per program run. The same on every engine: the offline engine
 * (testing/monitor.ts) takes hook registrations, so the tests check the graph `pulumi up` builds.
 */
export function destroyGuard(): pulumi.ResourceHook {
  return new pulumi.ResourceHook(DESTROY_GUARD_HOOK, () => {
    throw new Error(DESTROY_GUARD_MESSAGE);
  });
}

export interface BackendRouteArgs {
  readonly settings: BackendRouteSettings;
  /** Namespace of the backend's objects when `settings.namespace` is unset (the pooler's). */
  readonly defaultNamespace: string;
  /** The pooler Service's DNS name and client port (the PgBouncer component's `host` and `port`). */
  readonly pooler: { readonly host: pulumi.Input<string>; readonly port: pulumi.Input<number> };
  /** PostgreSQL itself (`database.host`, `database.port`): where `route: direct` sends the backend. */
  readonly database: Endpoint;
  /**
   * Resources that must be ready before the backend is sent to the pooler (its Deployment and Service, its
   * monitoring). While the route is `pgbouncer` they are also deleted only after the patches, which are
   * protected then: a `pulumi destroy` is refused before it deletes any of them. Ignored for
   * `route: direct`, so that a rollback never waits on a broken pooler.
   * @default none
   */
  readonly poolerReady?: readonly pulumi.Resource[];
}

/**
 * Points the backend at the pooler, or back at PostgreSQL: a server-side apply of two keys of the backend's
 * ConfigMap, then of one pod template annotation of its Deployment, which rolls the backend exactly when the
 * route changes. Both patches keep their changes when deleted (`retainOnDelete`), and are protected and
 * guarded by a delete hook while the route is `pgbouncer`: `pulumi destroy` is refused, in the program's
 * words, until the backend has gone `direct` (see `patchOptions`, `DESTROY_GUARD_HOOK` and docs/runbook.md).
 */
export class BackendRoute extends pulumi.ComponentResource {
  readonly route: BackendRouteTarget;
  /** What the backend's DB_HOST is set to. */
  readonly host: pulumi.Output<string>;
  /** What the backend's DB_PORT is set to. */
  readonly port: pulumi.Output<number>;
  readonly configPatch: k8s.core.v1.ConfigMapPatch;
  readonly deploymentPatch: k8s.apps.v1.DeploymentPatch;

  constructor(name: string, args: BackendRouteArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("clipper:backend:BackendRoute", name, {}, opts);
    const s = args.settings;
    const namespace = s.namespace ?? args.defaultNamespace;
    const endpoint = pulumi
      .all([args.pooler.host, args.pooler.port])
      .apply(([host, port]) => routeEndpoint(s.route, { host, port }, args.database));
    const annotations = patchAnnotations(s.forceConflicts);
    const dependsOn = s.route === "pgbouncer" ? [...(args.poolerReady ?? [])] : [];
    const guard = s.route === "pgbouncer" ? destroyGuard() : undefined;

    this.configPatch = new k8s.core.v1.ConfigMapPatch(
      `${name}-config`,
      {
        metadata: { name: s.configMapName, namespace, annotations },
        data: endpoint.apply((e) => backendConfigData(s, e)),
      },
      { parent: this, dependsOn, ...patchOptions(s.route, guard) },
    );

    this.deploymentPatch = new k8s.apps.v1.DeploymentPatch(
      `${name}-rollout`,
      {
        metadata: { name: s.deploymentName, namespace, annotations },
        spec: {
          template: {
            metadata: {
              annotations: endpoint.apply((e) => ({ [ROUTE_ANNOTATION]: routeAnnotationValue(s.route, e) })),
            },
          },
        },
      },
      // After the ConfigMap: pods started by the rollout must read the new values.
      { parent: this, dependsOn: [this.configPatch], ...patchOptions(s.route, guard) },
    );

    this.route = s.route;
    this.host = endpoint.apply((e) => e.host);
    this.port = endpoint.apply((e) => e.port);
    this.registerOutputs({ route: this.route, host: this.host, port: this.port });
  }
}
