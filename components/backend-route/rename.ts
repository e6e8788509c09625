/**
 * A rename of the backend's objects while the backend is routed to the pooler. The patches of the objects the
 * last update routed are protected (`patchOptions`), and a new name replaces them: the engine would refuse
 * with its generic "cannot replace a protected resource", after suggesting `pulumi state unprotect`. The
 * program refuses first, with the two updates that do it safely (route direct with the old names, then the
 * new names).
 *
 * The program cannot see the last update by itself. Of the ways to know it, it reads its own stack's last
 * outputs (`dbRoute` and `backendObjects`) through a StackReference (./last-route.ts): the engine's record of
 * the last successful update, read at preview, creating nothing. The others were worse: a record of our own
 * in the cluster (an annotation, or a ConfigMap next to the patches, read by the preflight) must be written
 * after the patches, so it needs the patches' protection and delete hook to keep a refused destroy from
 * deleting it first, and goes stale when an update stops between the two or `--target` leaves it out;
 * reading the backend objects' managed fields for our field manager cannot tell a rename from a first switch
 * without listing every ConfigMap in the cluster; and a dynamic provider, whose diff sees the old and new
 * names, is one more plugin for the CLI to run and fails with the engine's diagnostic, not the program's.
 */
import { UserError } from "../common";
import type { BackendRouteSettings } from "./settings";

/** The backend's objects the patches target: the stack output `backendObjects`. */
export interface BackendObjects {
  readonly namespace: string;
  readonly configMapName: string;
  readonly deploymentName: string;
}

export function backendObjects(s: BackendRouteSettings, defaultNamespace: string): BackendObjects {
  return {
    namespace: s.namespace ?? defaultNamespace,
    configMapName: s.configMapName,
    deploymentName: s.deploymentName,
  };
}

/** What the stack's last update exported; each field absent before the first update that exported it. */
export interface LastRoute {
  readonly route?: string;
  readonly objects?: BackendObjects;
}

/** Thrown before anything but the stack's own outputs is read: the change needs two updates. */
export class RouteChangeError extends UserError {}

function describe(o: BackendObjects): string {
  return `ConfigMap ${o.namespace}/${o.configMapName} and Deployment ${o.namespace}/${o.deploymentName}`;
}

/**
 * The refusal of a rename while routed, or undefined: when the last update routed the backend to the pooler
 * and these settings name other objects (whatever route they ask for). `key` gives a setting's full key.
 */
export function renameWhileRouted(
  last: LastRoute,
  s: BackendRouteSettings,
  defaultNamespace: string,
  key: (setting: string) => string,
): RouteChangeError | undefined {
  const was = last.objects;
  if (last.route !== "pgbouncer" || was === undefined) return undefined;
  const now = backendObjects(s, defaultNamespace);
  const changed = [
    ...(now.namespace !== was.namespace ? [["backend.namespace", was.namespace, now.namespace]] : []),
    ...(now.configMapName !== was.configMapName
      ? [["backend.configMapName", was.configMapName, now.configMapName]]
      : []),
    ...(now.deploymentName !== was.deploymentName
      ? [["backend.deploymentName", was.deploymentName, now.deploymentName]]
      : []),
  ];
  if (changed.length === 0) return undefined;
  return new RouteChangeError(
    `the backend's objects cannot be renamed while the backend is routed to the pooler: the last pulumi up ` +
      `routed ${describe(was)} (backend.route pgbouncer), and ` +
      changed.map(([k, from, to]) => `${key(k)} is now "${to}" (was "${from}")`).join(", ") +
      `. Those objects' patches are protected while routed, and new names would replace them, leaving the old ` +
      `backend on the pooler. Do it in two updates (docs/runbook.md, "Rename the backend's objects"): first ` +
      `\`pulumi config set --path backend.route direct\` with the old names and \`pulumi up\` (the old ` +
      `backend goes back to PostgreSQL and the patches are unprotected); then the new names and backend.route ` +
      `pgbouncer, and \`pulumi up\`.`,
  );
}
