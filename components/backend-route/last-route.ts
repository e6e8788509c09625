/**
 * The stack's own last outputs, read through a StackReference to itself (why: ./rename.ts): which route and
 * which backend objects the last successful update patched. A read, at preview too; nothing is created.
 */
import * as pulumi from "@pulumi/pulumi";
import type { BackendObjects, LastRoute } from "./rename";

/** The stack outputs it reads. */
export const LAST_ROUTE_OUTPUTS = { route: "dbRoute", objects: "backendObjects" } as const;

/** The fully qualified name of the running stack, as a StackReference takes it. */
export function ownStackName(): string {
  // The self-managed backends call every organization "organization"; Pulumi Cloud names the real one.
  return `${pulumi.getOrganization() || "organization"}/${pulumi.getProject()}/${pulumi.getStack()}`;
}

function isObjects(v: unknown): v is BackendObjects {
  const o = v as Partial<BackendObjects> | undefined;
  return (
    typeof o === "object" &&
    o !== null &&
    typeof o.namespace === "string" &&
    typeof o.configMapName === "string" &&
    typeof o.deploymentName === "string"
  );
}

/** The last update's route and backend objects (absent before the first update that exported them). */
export async function readLastRoute(): Promise<LastRoute> {
  const self = new pulumi.StackReference("clipper-last-update", { name: ownStackName() });
  const [route, objects] = await Promise.all([
    self.getOutputDetails(LAST_ROUTE_OUTPUTS.route),
    self.getOutputDetails(LAST_ROUTE_OUTPUTS.objects),
  ]);
  return {
    ...(typeof route.value === "string" ? { route: route.value } : {}),
    ...(isObjects(objects.value) ? { objects: objects.value } : {}),
  };
}
