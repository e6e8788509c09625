/**
 * What the policies read from a resource, in the shape both CrossGuard and the offline engine give it:
 * a type token, a URN (or none offline) and the Kubernetes object as plain JSON.
 */
import { POD_SCRIPT_NAME } from "../components/pgbouncer";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return -- Kubernetes objects arrive as untyped JSON (CrossGuard props, offline records); every read goes through plain()/at() */

export interface PolicyInputResource {
  readonly type: string;
  readonly name: string;
  /** `urn:pulumi:<stack>::<project>::<type>::<name>`; offline records have none. */
  readonly urn?: string;
  readonly props: Record<string, any>;
}

/** The stack a URN belongs to. */
export function stackOfUrn(urn: string | undefined): string | undefined {
  const m = /^urn:pulumi:([^:]+)::/.exec(urn ?? "");
  return m?.[1];
}

/** Workload types and the path from the object to its pod spec. */
const POD_SPEC_PATHS: Record<string, readonly string[]> = {
  "kubernetes:core/v1:Pod": ["spec"],
  "kubernetes:apps/v1:Deployment": ["spec", "template", "spec"],
  "kubernetes:apps/v1:StatefulSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:DaemonSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:ReplicaSet": ["spec", "template", "spec"],
  "kubernetes:core/v1:ReplicationController": ["spec", "template", "spec"],
  "kubernetes:batch/v1:Job": ["spec", "template", "spec"],
  "kubernetes:batch/v1:CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
};

/** A value as Pulumi marks a secret on the wire (the offline engine records inputs that way). */
export function isSecretMarker(v: unknown): v is { value: unknown } {
  return (
    typeof v === "object" && v !== null && (v as Record<string, unknown>)[specialSigKey] === specialSecretSig
  );
}

/** Strips a Pulumi secret marker (offline records keep them; CrossGuard has already removed them). */
export function plain(v: any): any {
  return isSecretMarker(v) ? plain(v.value) : v;
}

function at(obj: any, path: readonly string[]): any {
  let cur = plain(obj);
  for (const p of path) {
    if (cur === undefined || cur === null) return undefined;
    cur = plain(cur[p]);
  }
  return cur;
}

/**
 * The pod spec of a workload this stack creates; undefined for anything else. `…Patch` types are left out:
 * they patch another team's object, whose pod spec this stack neither sets nor can see.
 */
export function podSpecOf(r: Pick<PolicyInputResource, "type" | "props">): any {
  const path = POD_SPEC_PATHS[r.type];
  return path ? at(r.props, path) : undefined;
}

/** Every container of a pod spec (init and ephemeral too). */
export function containersOf(spec: any): any[] {
  if (!spec) return [];
  return ["containers", "initContainers", "ephemeralContainers"].flatMap((k) =>
    Array.isArray(plain(spec[k])) ? (plain(spec[k]) as any[]).map(plain) : [],
  );
}

export function isPgBouncerContainer(c: any): boolean {
  const command = plain(c?.command);
  if (!Array.isArray(command)) return false;
  // PgBouncer itself, or the pod's script that runs it ($0 is its name).
  return plain(command[0]) === "pgbouncer" || plain(command[3]) === POD_SCRIPT_NAME;
}

/**
 * Connections a PgBouncer container's server-login check opens (its script's PGBOUNCER_CHECK_LOGINS); 0 for a
 * container that runs PgBouncer without the pod's script.
 */
export function checkLoginsOf(c: any): number {
  const env = plain(c?.env);
  if (!Array.isArray(env)) return 0;
  const e = env.map(plain).find((v) => plain(v?.name) === "PGBOUNCER_CHECK_LOGINS");
  const n = Number(plain(e?.value));
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** The workload kinds a stack runs replicas with, by type token. */
export const WORKLOAD_KINDS: Readonly<Record<string, string>> = {
  "kubernetes:apps/v1:Deployment": "Deployment",
  "kubernetes:apps/v1:StatefulSet": "StatefulSet",
};

/** Deployments and StatefulSets this stack creates. */
export function workloads(resources: readonly PolicyInputResource[]): PolicyInputResource[] {
  return resources.filter((r) => WORKLOAD_KINDS[r.type] !== undefined);
}

/** Deployments and StatefulSets this stack creates that run PgBouncer. */
export function pgBouncerWorkloads(resources: readonly PolicyInputResource[]): PolicyInputResource[] {
  return workloads(resources).filter((r) => containersOf(podSpecOf(r)).some(isPgBouncerContainer));
}

/** `<Kind> <name>`, as a message names a workload. */
export function workloadName(r: PolicyInputResource): string {
  return `${WORKLOAD_KINDS[r.type] ?? r.type} ${metadataOf(r).name ?? r.name}`;
}

export function metadataOf(r: PolicyInputResource): { name?: string; namespace?: string; labels?: any } {
  return at(r.props, ["metadata"]) ?? {};
}

export { at };
