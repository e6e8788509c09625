/**
 * The lines of PgBouncer's auth file, one per user, from the Vault secret: the application user's (file
 * mode), `auth_user`'s (auth_query mode) and the stats user's. Problems go to the reader; a line is left
 * out when its user or secret was refused.
 */
import { needsPassword, verifierInPasswordMode } from "./problems";
import {
  authFileLine,
  md5Secret,
  parseScramVerifier,
  passwordProblem,
  scramVerifier,
  secretKind,
  userNameProblem,
} from "./secrets";
import type { VaultSecretReader } from "./secret-reader";
import type { AuthQuerySettings, AuthType, CredentialSettings } from "./settings";

/** The auth file's secret for a user whose login only PgBouncer checks. */
export function fileSecret(authType: AuthType, user: string, password: string): string {
  return authType === "md5" ? md5Secret(user, password) : scramVerifier(user, password);
}

/**
 * `authFileSecret: verifier`: a verifier (or md5 hash) as given, or derived from the password (for `user`,
 * when its name was usable).
 */
function verifierEntry(
  r: VaultSecretReader,
  settings: CredentialSettings,
  value: string,
  user: string | undefined,
): string | undefined {
  const problem = (message: string) => r.problem(settings.appPasswordKey, "appPasswordKey", message);
  const kind = secretKind(value);
  if (kind === "scram-verifier") {
    if (parseScramVerifier(value)) return value;
    problem(
      "starts like a SCRAM-SHA-256 verifier but is not one " +
        "(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, as in pg_authid)",
    );
    return undefined;
  }
  if (kind === "md5-hash") {
    if (settings.authType === "md5") return value;
    problem(
      "holds an md5 hash, which cannot answer scram-sha-256; store the password or the SCRAM verifier " +
        "from pg_authid (or set credentials.authType md5)",
    );
    return undefined;
  }
  const bad = passwordProblem(value);
  if (bad) problem(bad);
  return bad || user === undefined ? undefined : fileSecret(settings.authType, user, value);
}

/** File mode: the application user's line, with its password or verifier as `authFileSecret` says. */
export function appUserLine(
  r: VaultSecretReader,
  settings: CredentialSettings,
  statsUser: string,
): string | undefined {
  const user = r.read(settings.appUserKey, "appUserKey");
  const userBad = user === undefined ? undefined : userNameProblem(user);
  if (userBad) r.problem(settings.appUserKey, "appUserKey", userBad);
  else if (user === statsUser) {
    r.problem(settings.appUserKey, "appUserKey", "names the stats user; the application needs its own user");
  }
  const usable = user !== undefined && !userBad ? user : undefined;
  let entry: string | undefined;
  if (settings.authFileSecret === "password") {
    entry = r.password(settings.appPasswordKey, "appPasswordKey", (kind) =>
      verifierInPasswordMode(settings, kind),
    );
  } else {
    const value = r.read(settings.appPasswordKey, "appPasswordKey");
    if (value !== undefined) entry = verifierEntry(r, settings, value, usable);
  }
  return usable !== undefined && usable !== statsUser && entry !== undefined
    ? authFileLine(usable, entry)
    : undefined;
}

/**
 * auth_query mode: `auth_user`'s line. PgBouncer logs in as auth_user with no client whose SCRAM proof it
 * could reuse: this entry must be the password (a verifier would only let clients in, never PgBouncer out).
 */
export function authUserLine(
  r: VaultSecretReader,
  q: AuthQuerySettings,
  statsUser: string,
): string | undefined {
  const pw = r.password(
    q.passwordKey,
    "authQuery.passwordKey",
    needsPassword("PgBouncer's own login as auth_user"),
  );
  if (q.user === statsUser) {
    r.problem(q.passwordKey, "authQuery.passwordKey", `authQuery.user "${q.user}" is also the stats user`);
    return undefined;
  }
  return pw === undefined ? undefined : authFileLine(q.user, pw);
}

/**
 * The second application login's line (`credentials.secondLogin`): its user, which must differ from the first
 * login's and the stats user's, and its password; and the current login, which must name one of the two.
 */
export function secondLoginLine(
  r: VaultSecretReader,
  settings: CredentialSettings,
  firstUser: string | undefined,
  statsUser: string,
): string | undefined {
  const second = settings.secondLogin;
  if (!second) return undefined;
  const user = r.read(second.userKey, "secondLogin.userKey");
  const userBad = user === undefined ? undefined : userNameProblem(user);
  if (userBad) r.problem(second.userKey, "secondLogin.userKey", userBad);
  else if (user !== undefined && (user === firstUser || user === statsUser)) {
    r.problem(
      second.userKey,
      "secondLogin.userKey",
      `names the same user as ${user === statsUser ? "the stats user" : `appUserKey ("${settings.appUserKey}")`}; ` +
        "the two logins need two PostgreSQL roles",
    );
  }
  const password = r.password(second.passwordKey, "secondLogin.passwordKey", (kind) =>
    verifierInPasswordMode(settings, kind),
  );
  const current = r.read(second.currentKey, "secondLogin.currentKey");
  if (current !== undefined && current !== firstUser && current !== user) {
    r.problem(
      second.currentKey,
      "secondLogin.currentKey",
      `must name one of the two logins' users (the values of "${settings.appUserKey}" and "${second.userKey}")`,
    );
  }
  const usable = user !== undefined && !userBad && user !== firstUser && user !== statsUser;
  return usable && password !== undefined ? authFileLine(user, password) : undefined;
}
