/** Validates a manifest against the Kubernetes OpenAPI schema (kubernetes-models' generated validators). */
/* eslint-disable @typescript-eslint/no-require-imports */

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** The kubernetes-models module of an apiVersion/kind. */
export function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

interface SchemaError {
  readonly instancePath: string;
  readonly keyword: string;
  readonly message?: string;
}

/**
 * Throws with the schema's messages when the manifest is invalid, or when no schema knows its kind.
 * `partial` is for server-side-apply patches: they may leave out required fields, nothing else.
 */
export function validateManifest(manifest: Record<string, unknown>, partial = false): void {
  const apiVersion = String(manifest.apiVersion);
  const kind = String(manifest.kind);
  const mod = require(modelModule(apiVersion, kind)) as Record<string, ModelClass>;
  const Model = mod[kind];
  if (typeof Model !== "function") throw new Error(`no schema for ${apiVersion} ${kind}`);
  try {
    new Model(manifest).validate();
  } catch (e) {
    const errors = ((e as { errors?: SchemaError[] }).errors ?? []).filter(
      (x) => !(partial && x.keyword === "required"),
    );
    if (errors.length > 0 || !(e as { errors?: unknown }).errors) {
      const detail = errors.map((x) => `${x.instancePath} ${x.message ?? x.keyword}`).join("; ");
      throw new Error(`${apiVersion} ${kind}: ${detail || String(e)}`);
    }
  }
}
