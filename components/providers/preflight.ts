/**
 * The preflight's cluster half: every Kubernetes object the stack names but does not own (the pooler's
 * namespace, PostgreSQL's CA, a certificate's Secret, the backend's ConfigMap and Deployment), read with the
 * pinned context's credentials before anything is registered. Each missing or unreadable one is a problem
 * naming the object, the setting and what the stack needs it for; an unreachable cluster is one problem.
 */
import type { ClusterObjectRef, PreflightProblem } from "../common";
import { type ClusterReader, ClusterReadError } from "./kube-client";

/** The API path of an object. */
export function apiPath(ref: ClusterObjectRef): string {
  const ns = `/namespaces/${encodeURIComponent(ref.namespace ?? "")}`;
  const name = encodeURIComponent(ref.name);
  switch (ref.kind) {
    case "Namespace":
      return `/api/v1/namespaces/${name}`;
    case "ConfigMap":
      return `/api/v1${ns}/configmaps/${name}`;
    case "Secret":
      return `/api/v1${ns}/secrets/${name}`;
    case "Deployment":
      return `/apis/apps/v1${ns}/deployments/${name}`;
  }
}

/** How a message names an object: `ConfigMap clipper/postgres-ca`, `Namespace clipper`. */
export function objectName(ref: ClusterObjectRef): string {
  return ref.namespace === undefined ? `${ref.kind} ${ref.name}` : `${ref.kind} ${ref.namespace}/${ref.name}`;
}

/**
 * Reads each of `refs` (in parallel) and returns the problems, in `refs`' order. `key` gives a setting's full
 * key. An object in a namespace that is itself missing is not reported again.
 */
export async function checkClusterObjects(
  cluster: ClusterReader,
  refs: readonly ClusterObjectRef[],
  key: (setting: string) => string,
): Promise<PreflightProblem[]> {
  const unique = refs.filter((r, i) => refs.findIndex((x) => apiPath(x) === apiPath(r)) === i);
  const results = await Promise.all(
    unique.map(async (ref) => {
      try {
        return { ref, object: await cluster.get(apiPath(ref)) };
      } catch (e) {
        return { ref, error: e instanceof Error ? e : new Error(String(e)) };
      }
    }),
  );
  // An API server that cannot be reached (or is refused by TLS) is one problem, not one per object.
  const transport = results.find(
    (r) => r.error !== undefined && !(r.error instanceof ClusterReadError && r.error.status !== undefined),
  );
  if (transport?.error) {
    return [
      {
        object: cluster.describe,
        setting: key("providers.kubernetesContext"),
        message:
          `could not be read (${transport.error.message}), so the objects the stack names in it ` +
          `(${unique.map(objectName).join(", ")}) could not be checked; check the cluster is reachable ` +
          `with this context's credentials`,
      },
    ];
  }
  const missingNamespaces = new Set(
    results
      .filter((r) => r.ref.kind === "Namespace" && r.object === undefined && !r.error)
      .map((r) => r.ref.name),
  );
  const problems: PreflightProblem[] = [];
  for (const { ref, object, error } of results) {
    if (ref.namespace !== undefined && missingNamespaces.has(ref.namespace)) continue;
    const at = { object: objectName(ref), setting: key(ref.setting) };
    if (error) {
      problems.push({
        ...at,
        message:
          `could not be read from ${cluster.describe} (${error.message}); the context's credentials need ` +
          `get on ${ref.kind === "Namespace" ? "namespaces" : `${ref.kind.toLowerCase()}s in ${ref.namespace}`}`,
      });
    } else if (object === undefined) {
      problems.push({
        ...at,
        message: `does not exist in ${cluster.describe}, and ${ref.neededBy}; create it, or name another`,
      });
    } else if (ref.keys && ref.keys.length > 0) {
      const data = { ...(object.data as object | undefined), ...(object.binaryData as object | undefined) };
      const present = Object.keys(data).sort();
      const missing = ref.keys.filter((k) => !present.includes(k));
      if (missing.length > 0) {
        problems.push({
          ...at,
          message:
            `has no key ${missing.map((k) => `"${k}"`).join(", ")} (its keys: ${present.join(", ") || "none"}), ` +
            `and ${ref.neededBy}`,
        });
      }
    }
  }
  return problems;
}
