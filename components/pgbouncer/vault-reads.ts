/**
 * What the pooler reads from Vault before anything is registered: a Vault-held PostgreSQL CA (its PEM goes
 * into the ConfigMap `pgbouncer-server-ca`), and the PKI role its certificate is issued with. Each failure is a {@link PreflightProblem} naming the Vault
 * mount, path and key and the setting, never a throw inside an `apply` (which would escape the program's
 * one-message error path and print a stack).
 */
import type * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { type PreflightProblem, oneLineReason } from "../common";
import type { CaSource, TlsSettings } from "./tls-settings";

/** The stack's Vault: its provider, and its address for messages. */
export interface PinnedVault {
  readonly provider: pulumi.ProviderResource;
  readonly address: string;
}

/**
 * The Vault provider's messages for a client it could not set up (no Vault answering at its address, a token
 * it refuses): every read through that provider fails the same way, each after its own round of retries.
 */
const VAULT_CLIENT_FAILURES = [
  "failed to lookup token",
  "no vault token set on Client",
  "failed to create limited child token",
  "failed to configure Vault address",
];

/** Whether a failed read's message says the provider could not set up its Vault client. */
export function vaultClientFailed(message: string): boolean {
  return VAULT_CLIENT_FAILURES.some((m) => message.includes(m));
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

/** The invoke token of `vault.generic.getSecret`, which mocks answer. */
export const VAULT_GENERIC_READ_TOKEN = "vault:generic/getSecret:getSecret";

/** A certificate the program issues with Vault's PKI engine. */
export type VaultPkiCertificate = Extract<NonNullable<TlsSettings["certificate"]>, { source: "vault-pki" }>;

/** Whether a generic read found something; false for Vault's "no secret found" (a 404, or a 403 it hides). */
async function genericRead(path: string, v: PinnedVault): Promise<true | { readonly reason: string }> {
  try {
    await vault.generic.getSecret({ path }, { provider: v.provider });
    return true;
  } catch (e) {
    return { reason: oneLineReason(e instanceof Error ? e.message : String(e)) || "no reason given" };
  }
}

/**
 * Checks that Vault's PKI engine at `mount` has the role `role` the certificate is issued with. Vault answers
 * a missing mount and a missing role alike (no secret found), so the mount's public CA (`<mount>/cert/ca`)
 * is read too, to say which is missing. The token needs read on `<mount>/roles/<role>`.
 */
export async function checkPkiRole(
  c: VaultPkiCertificate,
  v: PinnedVault,
  key: (setting: string) => string,
): Promise<PreflightProblem[]> {
  const rolePath = `${c.mount}/roles/${c.role}`;
  // Both at once: a Vault that does not answer costs one round of the provider's retries, not two.
  const [role, mount] = await Promise.all([genericRead(rolePath, v), genericRead(`${c.mount}/cert/ca`, v)]);
  if (role === true) return [];
  if (mount !== true) {
    return [
      {
        object: `Vault PKI mount "${c.mount}"`,
        setting: key("tls.certificate.mount"),
        message:
          `could not be read from the Vault at ${v.address} (${mount.reason}): there is no PKI engine at ` +
          `${c.mount} (or the Vault is unreachable); the pooler's certificate is issued there`,
      },
    ];
  }
  return [
    {
      object: `Vault PKI mount "${c.mount}" role "${c.role}"`,
      setting: key("tls.certificate.role"),
      message:
        `could not be read from the Vault at ${v.address} (${role.reason}): the role does not exist, or the ` +
        `Vault token may not read ${rolePath}; the pooler's certificate is issued with it`,
    },
  ];
}
