/**
 * What is wrong with the Vault secret the credentials come from, said by Vault mount, path and key and the
 * setting that names the key, never by value.
 */
import { UserError } from "../common";
import type { SecretKind } from "./secrets";
import type { CredentialSettings } from "./settings";

export interface CredentialProblem {
  readonly mount: string;
  readonly path: string;
  /** The Vault key, or undefined when the whole secret is at fault. */
  readonly key?: string;
  /** The `credentials` setting that names that key. */
  readonly setting?: string;
  readonly message: string;
}

function describe(p: CredentialProblem): string {
  const where = `Vault KV v2 mount "${p.mount}" path "${p.path}"`;
  if (p.key === undefined) return `${where}: ${p.message}`;
  return `${where} key "${p.key}"${p.setting ? ` (credentials.${p.setting})` : ""}: ${p.message}`;
}

/** Thrown before any resource is registered; the message never contains a value read from Vault. */
export class VaultCredentialError extends UserError {
  constructor(readonly problems: readonly CredentialProblem[]) {
    super(
      `PgBouncer credentials refused (${problems.length} ${problems.length === 1 ? "problem" : "problems"}):\n` +
        problems.map((p) => `  - ${describe(p)}`).join("\n"),
    );
  }
}

/** Why a value that must be the password itself will not do, for `who` needs it. */
export function needsPassword(who: string): (kind: SecretKind) => string {
  return (kind) => `holds a ${kind}, but ${who} needs the password itself`;
}

/**
 * Why a verifier or hash in Vault is refused under `authFileSecret: password`, and what to store instead: the
 * upgrade path of a stack that kept a verifier there before `password` became the default.
 */
export function verifierInPasswordMode(settings: CredentialSettings, kind: SecretKind): string {
  const what = kind === "scram-verifier" ? "a SCRAM verifier" : "an md5 hash";
  return (
    `holds ${what}, but credentials.authFileSecret is "password" (the default): PgBouncer logs in to ` +
    `PostgreSQL with the password itself, so that no client login can lock it out. Store the application ` +
    `user's password under this key instead (vault kv patch -mount=${settings.vaultMount} ` +
    `${settings.vaultPath} ${settings.appPasswordKey}=<password>); PostgreSQL's password can then be set any ` +
    `ordinary way. To keep ${what}, set credentials.authFileSecret: verifier (refused in prod: one wrong ` +
    `password can lock every login out until PgBouncer restarts; docs/runbook.md, "Authentication failures")`
  );
}
