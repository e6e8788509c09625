/**
 * The application login for the `connectionUrl` output. The credentials component reads the same Vault
 * secret but exposes only the auth file and the exporter's connection string, so the login is read here,
 * from the same mount, path and keys (`credentials.appUserKey`, `credentials.appPasswordKey`).
 */
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import type { CredentialSettings } from "../credentials/settings";
import { passwordProblem, secretKind, userNameProblem } from "../credentials/secrets";
import type { Login } from "./route";

/** Either the login, or why no connection URL can be built (never containing a Vault value). */
export type LoginResult = { readonly login: Login } | { readonly unavailable: string };

/** Picks the login out of the Vault secret's data; pure. */
export function appLogin(settings: CredentialSettings, data: Readonly<Record<string, string>>): LoginResult {
  const where = `Vault mount "${settings.vaultMount}" path "${settings.vaultPath}"`;
  if (settings.authQuery) {
    return {
      unavailable:
        "credentials.authQuery is set: application users are looked up in PostgreSQL, so this program " +
        "knows no application login",
    };
  }
  const user = data[settings.appUserKey];
  const password = data[settings.appPasswordKey];
  if (user === undefined || userNameProblem(user) !== undefined) {
    return { unavailable: `${where} key "${settings.appUserKey}" holds no usable user name` };
  }
  if (password === undefined || passwordProblem(password) !== undefined) {
    return { unavailable: `${where} key "${settings.appPasswordKey}" holds no usable password` };
  }
  const kind = secretKind(password);
  if (kind !== "password") {
    return {
      unavailable:
        `${where} key "${settings.appPasswordKey}" holds a ${kind}, not the password a client needs; ` +
        `store the password there to publish connectionUrl`,
    };
  }
  return { login: { user, password } };
}

/**
 * Reads the application login from Vault. The result's login is a Pulumi secret; an unavailable login is
 * logged as a warning and leaves `connectionUrl` out of the stack outputs.
 */
export async function loadAppLogin(
  settings: CredentialSettings,
): Promise<{ login?: pulumi.Output<Login>; unavailable?: string }> {
  if (settings.authQuery) {
    const r = appLogin(settings, {});
    return "unavailable" in r ? { unavailable: r.unavailable } : {};
  }
  const result = await vault.kv.getSecretV2({ mount: settings.vaultMount, name: settings.vaultPath });
  const r = appLogin(settings, result.data ?? {});
  if ("unavailable" in r) return { unavailable: r.unavailable };
  return { login: pulumi.secret(r.login) };
}
