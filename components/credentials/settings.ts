import { ConfigReader, PG_IDENTIFIER } from "../common";

/** PgBouncer's `auth_type` values this program renders. */
export type AuthType = "scram-sha-256" | "md5";

/** What PgBouncer's auth file holds for the application user (file mode), see {@link CredentialSettings.authFileSecret}. */
export type AuthFileSecret = "password" | "verifier";

/**
 * `auth_query` mode: PgBouncer looks up the secret of a user missing from the auth file in PostgreSQL,
 * logged in as `user`. For databases with many users; the auth file then holds only `user` and the stats
 * user. The function the default query calls is `authQueryFunctionSql` (./auth-query.ts).
 */
export interface AuthQuerySettings {
  /**
   * `auth_user`: the PostgreSQL role PgBouncer logs in as to run the query. A stack setting, not a Vault
   * value, because pgbouncer.ini (a ConfigMap) names it. @default pgbouncer_auth
   */
  readonly user: string;
  /**
   * Key of `user`'s password in the Vault secret. It must be the password itself, not a SCRAM or md5
   * verifier: PgBouncer logs in as this user on its own, with no client whose SCRAM proof it could reuse,
   * so this one entry of the auth file holds the password. @default auth_password
   */
  readonly passwordKey: string;
  /**
   * `auth_query`: returns `(user name, secret)` for `$1`. @default
   * `SELECT usename, passwd FROM pgbouncer.get_auth($1)`, a SECURITY DEFINER function the database owner
   * creates (`authQueryFunctionSql`, ./auth-query.ts), so that `user` needs no superuser rights.
   */
  readonly query: string;
  /**
   * `auth_dbname` (PgBouncer 1.19+): the database the query runs in; the ini routes it in `[databases]` to
   * the same server (PgBouncer refuses lookups into a database it does not list).
   * @default unset: the query runs in the database the client asked for, so the function must exist in
   * every pooled database.
   */
  readonly dbname?: string;
}

/** Where PgBouncer's credentials live in Vault (KV v2), and how clients authenticate. */
export interface CredentialSettings {
  /**
   * `auth_type`. The auth file holds SCRAM verifiers (given in Vault, or computed from the password there).
   * @default scram-sha-256; md5 (deprecated by PostgreSQL) only when a stack asks for it
   */
  readonly authType: AuthType;
  /**
   * What the auth file holds for the application user (file mode; `authQuery.user` always gets its password).
   *
   * - `password`: the password itself. PgBouncer checks clients against it and logs in to PostgreSQL with it,
   *   whatever verifier PostgreSQL stores, so PostgreSQL's password is set any ordinary way (`\password`,
   *   `ALTER ROLE … PASSWORD '…'`) and no sequence of client logins (wrong or stale passwords, dropped
   *   handshakes, bursts after a start) can make a later correct login fail. The file is a Kubernetes Secret,
   *   a Pulumi secret, mounted read-only into the PgBouncer containers only; pgbouncer.ini and the ConfigMap
   *   carry no password.
   * - `verifier`: a SCRAM verifier (given in Vault, or derived from the password there), or an md5 hash with
   *   `authType: md5`. **Hazard** on PgBouncer 1.25.2: with a SCRAM verifier PgBouncer can log in to
   *   PostgreSQL only with the keys of a client's finished SCRAM login on the same process. If the first
   *   finished login after a start uses a wrong password, every later login is refused with
   *   `server login failed: wrong password type` until PgBouncer restarts; the first burst after a start
   *   of a multi-process pod can be refused the same way; and PostgreSQL's verifier must be set from this
   *   program's (`ALTER ROLE … PASSWORD '<verifier>'`), or every server login fails. The policy pack
   *   refuses it in prod (docs/runbook.md, "Authentication failures").
   *
   * @default password: no client login can lock the pooler out
   */
  readonly authFileSecret: AuthFileSecret;
  /** Path where the KV v2 engine is mounted. @default secret */
  readonly vaultMount: string;
  /** Name of the KV v2 secret under the mount that holds every key below. @default clipper/pgbouncer */
  readonly vaultPath: string;
  /**
   * Key of the application user's name in the Vault secret (file mode only). @default app_user
   */
  readonly appUserKey: string;
  /**
   * Key of the application user's secret in the Vault secret (file mode only): the password. With
   * `authFileSecret: verifier` it may also hold the SCRAM verifier copied from `pg_authid.rolpassword` (or
   * an `md5…` hash in md5 mode). @default app_password
   */
  readonly appPasswordKey: string;
  /**
   * Key of the stats user's password (the exporter's login; the user name is `exporter.statsUser`). It must
   * be the password itself: the exporter's connection string needs it. @default exporter_password
   */
  readonly statsPasswordKey: string;
  /**
   * `auth_query` mode, instead of listing the application user in the auth file; `appUserKey` and
   * `appPasswordKey` must then be left out. @default unset: file mode, the auth file lists the application
   * user and the stats user
   */
  readonly authQuery?: AuthQuerySettings;
}

export const CREDENTIAL_DEFAULTS: CredentialSettings = {
  authType: "scram-sha-256",
  authFileSecret: "password",
  vaultMount: "secret",
  vaultPath: "clipper/pgbouncer",
  appUserKey: "app_user",
  appPasswordKey: "app_password",
  statsPasswordKey: "exporter_password",
};

export const AUTH_QUERY_DEFAULTS: Omit<AuthQuerySettings, "dbname"> = {
  user: "pgbouncer_auth",
  passwordKey: "auth_password",
  query: "SELECT usename, passwd FROM pgbouncer.get_auth($1)",
};

const KEY = /^[A-Za-z0-9_.-]+$/;
const PATH = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
/** One line, and it must take the user name as `$1`. */
const QUERY = /^[^\r\n]*\$1[^\r\n]*$/;

export function readCredentials(r: ConfigReader): CredentialSettings {
  const d = CREDENTIAL_DEFAULTS;
  const queryMode = r.has("authQuery");
  const base = {
    authType: r.oneOf("authType", d.authType, ["scram-sha-256", "md5"]),
    authFileSecret: r.oneOf("authFileSecret", d.authFileSecret, ["password", "verifier"]),
    vaultMount: r.string("vaultMount", d.vaultMount, PATH, "a Vault mount path"),
    vaultPath: r.string("vaultPath", d.vaultPath, PATH, "a Vault secret path"),
    appUserKey: r.string("appUserKey", d.appUserKey, KEY, "a Vault key name"),
    appPasswordKey: r.string("appPasswordKey", d.appPasswordKey, KEY, "a Vault key name"),
    statsPasswordKey: r.string("statsPasswordKey", d.statsPasswordKey, KEY, "a Vault key name"),
  };
  let authQuery: AuthQuerySettings | undefined;
  if (queryMode) {
    for (const field of ["appUserKey", "appPasswordKey", "authFileSecret"]) {
      if (r.has(field)) {
        r.issues.add(
          `${r.key}.${field}`,
          `is not used when ${r.key}.authQuery is set (auth_query mode looks application users up in ` +
            `PostgreSQL); remove one of them`,
        );
      }
    }
    const q = r.child("authQuery");
    const a = AUTH_QUERY_DEFAULTS;
    authQuery = {
      user: q.string("user", a.user, PG_IDENTIFIER, "a lower-case PostgreSQL identifier"),
      passwordKey: q.string("passwordKey", a.passwordKey, KEY, "a Vault key name"),
      query: q.string("query", a.query, QUERY, "one line of SQL that takes the user name as $1"),
      ...(q.has("dbname")
        ? { dbname: q.string("dbname", undefined, PG_IDENTIFIER, "a lower-case PostgreSQL identifier") }
        : {}),
    };
    q.rejectUnknown();
    if (authQuery.passwordKey === base.statsPasswordKey) {
      q.issues.add(
        `${q.key}.passwordKey`,
        `is "${authQuery.passwordKey}"; must differ from ${r.key}.statsPasswordKey`,
      );
    }
  } else {
    const keys = [base.appUserKey, base.appPasswordKey, base.statsPasswordKey];
    if (new Set(keys).size !== keys.length) {
      r.issues.add(
        `${r.key}.appUserKey`,
        `appUserKey "${base.appUserKey}", appPasswordKey "${base.appPasswordKey}" and statsPasswordKey ` +
          `"${base.statsPasswordKey}" must be three different Vault keys`,
      );
    }
  }
  r.rejectUnknown();
  return authQuery ? { ...base, authQuery } : base;
}
