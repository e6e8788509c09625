/**
 * Turns recorded resources into files: Kubernetes objects as manifests `kubectl apply` understands,
 * everything else as JSON, secret values redacted.
 */
import { type RecordedResource, offlineName } from "./resource";

/** How Pulumi marks a secret value on the wire (and in mock inputs). */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export function isSecretMarker(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
}

export const REDACTED = "[secret]";

/**
 * Replaces every secret value by REDACTED, deeply. A secret object (Pulumi marks a whole map secret when
 * one of its values is) keeps its keys, so a redacted Secret still shows which keys it holds.
 */
export function redact(value: unknown): unknown {
  if (isSecretMarker(value)) {
    const inner = value.value;
    if (typeof inner === "object" && inner !== null && !Array.isArray(inner)) {
      return Object.fromEntries(Object.keys(inner).map((k) => [k, REDACTED]));
    }
    return REDACTED;
  }
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v)]));
  }
  return value;
}

/** Whether any value inside is a secret. */
export function containsSecret(value: unknown): boolean {
  if (isSecretMarker(value)) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (typeof value === "object" && value !== null) return Object.values(value).some(containsSecret);
  return false;
}

/** `kubernetes:apps/v1:Deployment` → `{ apiVersion: "apps/v1", kind: "Deployment" }`; core is `v1`. */
export function kubernetesType(type: string): { apiVersion: string; kind: string } | undefined {
  const m = /^kubernetes:([^:]+):([^:]+)$/.exec(type);
  if (!m || m[1].startsWith("helm")) return undefined;
  const [group, version] = m[1].split("/");
  // A `…Patch` resource is a server-side apply of the object it patches.
  const kind = m[2].endsWith("Patch") ? m[2].slice(0, -"Patch".length) : m[2];
  return { apiVersion: group === "core" ? version : `${group}/${version}`, kind };
}

/**
 * Whether a resource is a server-side patch of an object another team owns (the backend's ConfigMap and
 * Deployment). Its manifest is applied, never pruned: it carries no render-set label.
 */
export function isPatch(type: string): boolean {
  return /^kubernetes:[^:]+:[^:]+Patch$/.test(type);
}

/**
 * The label on every object the render owns (not on patches, not in pod templates), naming the render it
 * came from. It is what a label-based prune selects: `kubectl apply --prune -l clipper.io/render-set=…`.
 */
export const RENDER_SET_LABEL = "clipper.io/render-set";

/** The render-set label's value for one stack of one project, e.g. `clipper-pgbouncer.prod`. */
export function renderSetValue(project: string, stack: string): string {
  return `${project}.${stack}`;
}

/**
 * The manifest of a Kubernetes resource, or undefined for resources of other providers. With `renderSet`,
 * every object except a patch gets the `RENDER_SET_LABEL` label with that value.
 */
export function toManifest(r: RecordedResource, renderSet?: string): Record<string, unknown> | undefined {
  const t = kubernetesType(r.type);
  if (!t) return undefined;
  const inputs = redact(r.inputs) as Record<string, unknown>;
  const { apiVersion, kind, metadata, ...rest } = inputs;
  const meta = { ...(metadata as Record<string, unknown>) };
  if (meta.name === undefined) meta.name = offlineName(r.type, r.name, r.inputs);
  if (renderSet !== undefined && !isPatch(r.type)) {
    meta.labels = { ...(meta.labels as Record<string, string> | undefined), [RENDER_SET_LABEL]: renderSet };
  }
  return { apiVersion: apiVersion ?? t.apiVersion, kind: kind ?? t.kind, metadata: meta, ...rest };
}
