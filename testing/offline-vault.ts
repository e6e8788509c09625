/**
 * The one offline Vault: what the render and every test that runs the program offline answer its Vault read
 * with. Every key the stack's credential settings read is there: the user name keys hold `clipper_app` (and
 * `clipper_app_b` for a second login; the current one is `clipper_app`), every other key `offline-<key>`, a
 * password that is easy to find should it ever leak out of a secret.
 */
import { vaultKeys, vaultReadsFor } from "../components/credentials";
import { parseSettings } from "../stacks/settings";
import { stackFileConfig, rawStackConfig } from "../stacks/stack-file";

/** A KV v2 secret whose current version is deleted (Vault then answers with its metadata, no data). */
export class DeletedVersion {
  constructor(readonly data: Record<string, string> = {}) {}
}

/**
 * Answers a Vault KV v2 read: the secret's data, a {@link DeletedVersion}, or undefined when the path does
 * not exist.
 */
export type VaultSource = (
  mount: string,
  name: string,
) => Record<string, string> | DeletedVersion | undefined;

/** The user name every offline Vault holds (the current login, when the stack has two). */
export const OFFLINE_APP_USER = "clipper_app";
/** The second login's user name (`credentials.secondLogin`). */
export const OFFLINE_SECOND_USER = "clipper_app_b";

export interface OfflineVaultOptions {
  /**
   * Config keys the run sets or overrides (full keys, as `runOffline` takes them), so that the keys follow
   * a changed `credentials` setting. @default none
   */
  readonly config?: Readonly<Record<string, string>>;
  /** Values by Vault key that replace the offline ones (a verifier, a password with odd characters). */
  readonly values?: Readonly<Record<string, string>>;
}

/** The offline value of each key `stack` (with `opts.config`) reads, by Vault key. */
export function offlineVaultData(stack: string, opts: OfflineVaultOptions = {}): Record<string, string> {
  const { credentials } = parseSettings(rawStackConfig({ ...stackFileConfig(stack), ...opts.config }));
  const value = (key: string, setting: string): string =>
    setting === "appUserKey" || setting === "secondLogin.currentKey"
      ? OFFLINE_APP_USER
      : setting === "secondLogin.userKey"
        ? OFFLINE_SECOND_USER
        : `offline-${key}`;
  const data = Object.fromEntries(
    vaultKeys(credentials).map(({ key, setting }) => [key, value(key, setting)]),
  );
  return { ...data, ...opts.values };
}

/** The PEM an offline Vault holds for a server CA (`tls.serverCa.source: vault`): a placeholder, not a CA. */
export const OFFLINE_CA_PEM = "-----BEGIN CERTIFICATE-----\n(offline server CA)\n-----END CERTIFICATE-----\n";

/**
 * Vault as `runOffline` asks it: the data of the stack's secret at its mount and path, and a placeholder CA
 * where `tls.serverCa` names a Vault key; nothing elsewhere.
 */
export function offlineVault(stack: string, opts: OfflineVaultOptions = {}): VaultSource {
  const data = offlineVaultData(stack, opts);
  const { credentials, tls } = parseSettings(rawStackConfig({ ...stackFileConfig(stack), ...opts.config }));
  const [read] = vaultReadsFor(credentials);
  const ca = tls.serverCa?.source === "vault" ? tls.serverCa : undefined;
  return (mount, name) => {
    if (mount === read.mount && name === read.name) return { ...data };
    if (ca && mount === ca.mount && name === ca.path) return { [ca.key]: OFFLINE_CA_PEM };
    return undefined;
  };
}

/** Answers a Vault read of any path (`vault.generic.getSecret`): its data, or undefined when nothing is there. */
export type VaultPaths = (path: string) => Record<string, string> | undefined;

/**
 * The PKI engine of an offline Vault, for a stack whose whole config is `config`: the mount its certificate
 * is issued at has a CA (`<mount>/cert/ca`) and the role (`<mount>/roles/<role>`); nothing else is there.
 */
export function offlinePki(config: Readonly<Record<string, string>>): VaultPaths {
  let cert: { mount: string; role: string } | undefined;
  try {
    const c = parseSettings(rawStackConfig(config)).tls.certificate;
    if (c?.source === "vault-pki") cert = { mount: c.mount, role: c.role };
  } catch {
    // refused settings: the program reads no Vault
  }
  return (path): Record<string, string> | undefined => {
    if (!cert) return undefined;
    if (path === `${cert.mount}/cert/ca`) return { certificate: "(offline issuing CA)" };
    if (path === `${cert.mount}/roles/${cert.role}`)
      return { allow_bare_domains: "true", allow_subdomains: "false" };
    return undefined;
  };
}
