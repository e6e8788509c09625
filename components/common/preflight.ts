/**
 * What a stack names but does not own (PostgreSQL's CA, the backend's objects, Vault's PKI role, a KV
 * secret), checked before anything is registered: each problem names the object, the setting that names
 * it, what was expected and what was found. Nothing here reads anything: the readers are the concerns'.
 */
import { UserError } from "./issues";

/** One object the stack names that cannot be used as it is. */
export interface PreflightProblem {
  /**
   * The object as a person finds it, e.g. `ConfigMap clipper/postgres-ca`, `Vault PKI mount "pki" role
   * "clipper-pgbouncer"`, `Vault KV v2 mount "secret" path "x" key "ca.crt"`.
   */
  readonly object: string;
  /** The setting that names it (full key, e.g. `clipper-pgbouncer:tls.serverCa.name`). */
  readonly setting: string;
  /** What was expected and what was found, and what to do. */
  readonly message: string;
}

/** A Kubernetes object the stack names but does not own, and what it must hold. */
export interface ClusterObjectRef {
  readonly kind: "Namespace" | "ConfigMap" | "Secret" | "Deployment";
  /** Undefined for a Namespace. */
  readonly namespace?: string;
  readonly name: string;
  /** Keys its `data` must have (a ConfigMap's or Secret's). @default none */
  readonly keys?: readonly string[];
  /** The setting that names it, below the project's namespace (`tls.serverCa.name`). */
  readonly setting: string;
  /** What goes wrong without it, for the message (`the pooler's pods mount it`). */
  readonly neededBy: string;
}

/** Thrown before any resource but the providers is registered: nothing was created. */
export class PreflightError extends UserError {
  constructor(readonly problems: readonly PreflightProblem[]) {
    super(
      `the stack names ${problems.length === 1 ? "an object" : `${problems.length} objects`} it does not own ` +
        `that ${problems.length === 1 ? "is" : "are"} not there as it needs ${problems.length === 1 ? "it" : "them"}; ` +
        `nothing was created:\n` +
        problems.map((p) => `  - ${p.object} (${p.setting}): ${p.message}`).join("\n"),
    );
  }
}

/**
 * A provider's error on one line: the Vault provider's are Go multierror lists (`1 error occurred:\n\t* …\n\n`)
 * around the Vault API's own (`Code: 403. Errors:\n\n* permission denied`), which would break a
 * one-problem-per-line message.
 */
export function oneLineReason(reason: string): string {
  return reason
    .replace(/:?\s*\d+ errors? occurred:/g, ":")
    .replace(/:\s*\n\s*\*\s*/g, ": ")
    .replace(/\s*\n\s*\*\s*/g, "; ")
    .replace(/\s+/g, " ")
    .trim();
}
