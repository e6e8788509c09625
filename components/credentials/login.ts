/**
 * The application login (user and password) for consumers that need to connect as the application, such as
 * the `connectionUrl` stack output. Only available when Vault holds the password itself, in file mode. With
 * a second login (`credentials.secondLogin`), the one the current key names.
 */
import type { CredentialSettings } from "./settings";
import { passwordProblem, secretKind, userNameProblem } from "./secrets";

/**
 * How many logins the pods' server-login check opens (components/pgbouncer/pgbouncer-pod.sh: before a
 * process applies new files, every login whose password the auth file holds logs in to PostgreSQL through a
 * throwaway PgBouncer): the application login and the second one, or auth_query's user; none when the auth
 * file holds verifiers, with which PgBouncer cannot log in on its own. The pool budget counts them.
 */
export function serverLoginChecks(settings: CredentialSettings): number {
  if (settings.authQuery) return 1;
  if (settings.authFileSecret !== "password") return 0;
  return settings.secondLogin ? 2 : 1;
}

/** The application login, as read from Vault. */
export interface Login {
  readonly user: string;
  readonly password: string;
}

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
  const second = settings.secondLogin;
  const useSecond = second !== undefined && data[second.currentKey] === data[second.userKey];
  const userKey = useSecond ? second.userKey : settings.appUserKey;
  const passwordKey = useSecond ? second.passwordKey : settings.appPasswordKey;
  const user = data[userKey];
  const password = data[passwordKey];
  if (user === undefined || userNameProblem(user) !== undefined) {
    return { unavailable: `${where} key "${userKey}" holds no usable user name` };
  }
  if (password === undefined || passwordProblem(password) !== undefined) {
    return { unavailable: `${where} key "${passwordKey}" holds no usable password` };
  }
  const kind = secretKind(password);
  if (kind !== "password") {
    return {
      unavailable:
        `${where} key "${passwordKey}" holds a ${kind}, not the password a client needs; ` +
        `store the password there to publish connectionUrl`,
    };
  }
  return { login: { user, password } };
}
