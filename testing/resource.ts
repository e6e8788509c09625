/**
 * What the offline engine records and how it names what it records: shared by the engine (which answers
 * the program with these names) and the manifest writer (which writes them), so both agree.
 */
import * as crypto from "crypto";

/** A resource as the engine would receive it. */
export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

/**
 * Kinds whose auto-name carries a content hash, as kustomize's ConfigMap and Secret generators do: a
 * change gives a new name, so the Deployment that references it rolls. The Pulumi provider gets the same
 * effect by replacing them (it treats both as immutable).
 */
export const HASHED_TYPES: readonly string[] = ["kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret"];

function contentHash(inputs: unknown): string {
  return crypto.createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 8);
}

/**
 * The `metadata.name` the offline engine gives a Kubernetes object the program leaves unnamed: a
 * ConfigMap or Secret is `<logical name>-<hash of its inputs>`, anything else its logical name, so that a
 * render with other settings names the same object the same way and applying it updates instead of adding
 * a second one. (A real `pulumi up` appends a random suffix once and keeps it in the state; see docs/gitops.md,
 * "Limits".)
 */
export function offlineName(type: string, logicalName: string, inputs: unknown): string {
  return HASHED_TYPES.includes(type) ? `${logicalName}-${contentHash(inputs)}` : logicalName;
}
