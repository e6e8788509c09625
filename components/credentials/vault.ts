/**
 * PgBouncer's credentials from HashiCorp Vault (KV v2). {@link loadPoolerCredentials} reads and checks them
 * before the program registers anything, so a bad Vault value stops the run with nothing created.
 */
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { oneLineReason } from "../common";
import { type CredentialContext, buildCredentials } from "./build";
import { appLogin } from "./login";
import { VaultCredentialError } from "./problems";
import type { CredentialSettings } from "./settings";
import type { PoolerCredentials } from "./types";

/** The invoke token of `vault.kv.getSecretV2`, which mocks answer. */
export const VAULT_KV2_READ_TOKEN = "vault:kv/getSecretV2:getSecretV2";

/** Options of the Vault read. */
export interface VaultReadOptions {
  /** Resource the read is attributed to. @default none: the read happens before any resource exists */
  readonly parent?: pulumi.Resource;
  /**
   * Vault provider: the stack's, pinned to `providers.vaultAddress`. @default the default provider,
   * configured by `vault:address` / `vault:token` or `VAULT_ADDR` / `VAULT_TOKEN` (the program disables it)
   */
  readonly provider?: pulumi.ProviderResource;
  /**
   * The provider's address, which a failed read names. @default the default provider's (`vault:address`,
   * else `VAULT_ADDR`)
   */
  readonly address?: string;
}

/**
 * Reads the Vault secret `settings.vaultPath` under `settings.vaultMount`, checks every value, and returns
 * the auth file and the exporter's connection string as Pulumi secrets. Await it before registering any
 * resource: it throws a {@link VaultCredentialError} naming the Vault mount, path and key of each problem.
 */
export async function loadPoolerCredentials(
  settings: CredentialSettings,
  ctx: CredentialContext,
  opts: VaultReadOptions = {},
): Promise<PoolerCredentials> {
  let result: vault.kv.GetSecretV2Result;
  try {
    result = await vault.kv.getSecretV2(
      { mount: settings.vaultMount, name: settings.vaultPath },
      {
        ...(opts.parent ? { parent: opts.parent } : {}),
        ...(opts.provider ? { provider: opts.provider } : {}),
      },
    );
  } catch (e) {
    const address = opts.address ?? (opts.provider ? undefined : defaultVaultAddress());
    const at = ` from the Vault at ${address ?? "(no vault:address or VAULT_ADDR set)"}`;
    throw new VaultCredentialError([
      {
        mount: settings.vaultMount,
        path: settings.vaultPath,
        message:
          `could not be read${at} (${oneLineReason(e instanceof Error ? e.message : String(e)) || "no reason given"}); ` +
          `check that Vault is reachable (${opts.address ? "providers.vaultAddress" : "vault:address or VAULT_ADDR"}), that the secret exists and that the ` +
          `Vault token may read it`,
      },
    ]);
  }
  const plain = buildCredentials(settings, ctx, {
    data: result.data ?? {},
    deleted: result.destroyed === true || (result.deletionTime ?? "") !== "",
  });
  const login = appLogin(settings, result.data ?? {});
  return {
    authFile: pulumi.secret(plain.authFile),
    exporterConnectionString: pulumi.secret(plain.exporterConnectionString),
    iniAuth: plain.iniAuth,
    serverLoginChecks: plain.serverLoginChecks,
    appLogin: "login" in login ? { login: pulumi.secret(login.login) } : login,
  };
}

/** The address the default Vault provider uses: `vault:address`, else `VAULT_ADDR` (as the provider reads them). */
export function defaultVaultAddress(): string | undefined {
  return new pulumi.Config("vault").get("address") ?? (process.env.VAULT_ADDR || undefined);
}
