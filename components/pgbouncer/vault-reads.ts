/**
 * What the pooler reads from Vault before anything is registered: a Vault-held PostgreSQL CA (its PEM goes
 * into the ConfigMap `pgbouncer-server-ca`). Each failure is a {@link PreflightProblem} naming the Vault
 * mount, path and key and the setting, never a throw inside an `apply` (which would escape the program's
 * one-message error path and print a stack).
 */
import type * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { type PreflightProblem, oneLineReason } from "../common";
import type { CaSource } from "./tls-settings";

/** The stack's Vault: its provider, and its address for messages. */
export interface PinnedVault {
  readonly provider: pulumi.ProviderResource;
  readonly address: string;
}

/** A server CA held in Vault. */
export type VaultCaSource = Extract<CaSource, { source: "vault" }>;

const PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/**
 * Why `value` will not do as PostgreSQL's CA, or undefined when it is a PEM certificate (and nothing else
 * secret: the PEM is written into a ConfigMap, which is not a secret).
 */
export function serverCaProblem(value: string | undefined, present: readonly string[]): string | undefined {
  if (value === undefined) {
    return `is missing from the secret (keys present: ${present.length > 0 ? present.join(", ") : "none"})`;
  }
  if (!value.includes(PEM_CERTIFICATE)) {
    return `does not hold a PEM CA certificate (no "${PEM_CERTIFICATE}" line); store PostgreSQL's CA there`;
  }
  if (/PRIVATE KEY-----/.test(value)) {
    return (
      "holds a private key beside the certificate; store PostgreSQL's CA certificate alone under this key " +
      "(it is copied into a ConfigMap, which is no place for a key)"
    );
  }
  return undefined;
}

/**
 * Reads a Vault-held server CA through the stack's Vault provider: its PEM, or the problem. `key` gives a
 * setting's full key (`tls.serverCa.key` -> `clipper-pgbouncer:tls.serverCa.key`).
 */
export async function readServerCa(
  source: VaultCaSource,
  v: PinnedVault,
  key: (setting: string) => string,
): Promise<{ readonly pem: string } | { readonly problem: PreflightProblem }> {
  const where = `Vault KV v2 mount "${source.mount}" path "${source.path}"`;
  const object = `${where} key "${source.key}"`;
  let result: vault.kv.GetSecretV2Result;
  try {
    result = await vault.kv.getSecretV2({ mount: source.mount, name: source.path }, { provider: v.provider });
  } catch (e) {
    const reason = oneLineReason(e instanceof Error ? e.message : String(e)) || "no reason given";
    return {
      problem: {
        object: where,
        setting: key("tls.serverCa.path"),
        message:
          `could not be read from the Vault at ${v.address} (${reason}); check that Vault is reachable, ` +
          `that the secret exists and that the Vault token may read it`,
      },
    };
  }
  if (result.destroyed === true || (result.deletionTime ?? "") !== "") {
    return {
      problem: {
        object,
        setting: key("tls.serverCa.key"),
        message: "cannot be read: the secret's current version is deleted or destroyed; write a new version",
      },
    };
  }
  const data = result.data ?? {};
  const problem = serverCaProblem(data[source.key], Object.keys(data).sort());
  if (problem !== undefined)
    return { problem: { object, setting: key("tls.serverCa.key"), message: problem } };
  return { pem: data[source.key] };
}
