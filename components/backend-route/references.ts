/**
 * What the backend switch names but does not own: the backend's namespace, ConfigMap and Deployment. The
 * program checks them before it registers anything (components/providers/preflight.ts): a patch of an object
 * that is not there would only fail after the pooler was deployed.
 */
import type { ClusterObjectRef } from "../common";
import type { BackendRouteSettings } from "./settings";

export function backendReferences(s: BackendRouteSettings, defaultNamespace: string): ClusterObjectRef[] {
  const namespace = s.namespace ?? defaultNamespace;
  return [
    {
      kind: "Namespace",
      name: namespace,
      setting: s.namespace !== undefined ? "backend.namespace" : "namespace",
      neededBy: "the backend's objects are there",
    },
    {
      kind: "ConfigMap",
      namespace,
      name: s.configMapName,
      setting: "backend.configMapName",
      neededBy: "the backend switch sets its DB_HOST/DB_PORT",
    },
    {
      kind: "Deployment",
      namespace,
      name: s.deploymentName,
      setting: "backend.deploymentName",
      neededBy: "the backend switch rolls it onto the new DB_HOST/DB_PORT",
    },
  ];
}
