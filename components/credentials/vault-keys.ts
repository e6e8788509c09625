import type { CredentialSettings } from "./settings";

/** One Vault KV v2 read the program makes, and the keys it needs from that secret. */
export interface VaultRead {
  readonly mount: string;
  readonly name: string;
  readonly keys: readonly string[];
}

/** Every Vault secret and key `settings` make the program read (for offline renders and runbooks). */
export function vaultReadsFor(settings: CredentialSettings): VaultRead[] {
  return [
    { mount: settings.vaultMount, name: settings.vaultPath, keys: vaultKeys(settings).map((k) => k.key) },
  ];
}

/** The keys the stack reads from its Vault secret, each with the setting (below `credentials.`) naming it. */
export function vaultKeys(settings: CredentialSettings): { key: string; setting: string }[] {
  const stats = { key: settings.statsPasswordKey, setting: "statsPasswordKey" };
  return settings.authQuery
    ? [{ key: settings.authQuery.passwordKey, setting: "authQuery.passwordKey" }, stats]
    : [
        { key: settings.appUserKey, setting: "appUserKey" },
        { key: settings.appPasswordKey, setting: "appPasswordKey" },
        ...(settings.secondLogin
          ? [
              { key: settings.secondLogin.userKey, setting: "secondLogin.userKey" },
              { key: settings.secondLogin.passwordKey, setting: "secondLogin.passwordKey" },
              { key: settings.secondLogin.currentKey, setting: "secondLogin.currentKey" },
            ]
          : []),
        stats,
      ];
}
