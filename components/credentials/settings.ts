/**
 * Where PgBouncer's credentials live in Vault (KV v2), and how clients authenticate (config key
 * `credentials`): each setting declared once, see components/common/schema.ts. Which Vault keys they make
 * the program read: ./vault-keys.ts.
 */
import { type Infer, PG_IDENTIFIER, VAULT_PATH, defaultsOf, oneOf, section, string } from "../common";

const KEY = /^[A-Za-z0-9_.-]+$/;
/** One line, and it must take the user name as `$1`. */
const QUERY = /^[^\r\n]*\$1[^\r\n]*$/;
/** The name of a key in the Vault secret: only read, never written anywhere. */
const vaultKey = (name: string) => string(KEY, "a Vault key name").default(name).notWritten();

/**
 * `auth_query` mode: PgBouncer looks up the secret of a user missing from the auth file in PostgreSQL,
 * logged in as `user`. For databases with many users; the auth file then holds only `user` and the stats
 * user. The function the default query calls is `authQueryFunctionSql` (./auth-query.ts).
 */
export const AUTH_QUERY = section({
  /**
   * `auth_user`: the PostgreSQL role PgBouncer logs in as to run the query. A stack setting, not a Vault
   * value, because pgbouncer.ini (a ConfigMap) names it. @default pgbouncer_auth
   */
  user: string(PG_IDENTIFIER, "a lower-case PostgreSQL identifier").default("pgbouncer_auth"),
  /**
   * Key of `user`'s password in the Vault secret. It must be the password itself, not a SCRAM or md5
   * verifier: PgBouncer logs in as this user on its own, with no client whose SCRAM proof it could reuse,
   * so this one entry of the auth file holds the password. @default auth_password
   */
  passwordKey: vaultKey("auth_password"),
  /**
   * `auth_query`: returns `(user name, secret)` for `$1`. @default
   * `SELECT usename, passwd FROM pgbouncer.get_auth($1)`, a SECURITY DEFINER function the database owner
   * creates (`authQueryFunctionSql`, ./auth-query.ts), so that `user` needs no superuser rights.
   */
  query: string(QUERY, "one line of SQL that takes the user name as $1").default(
    "SELECT usename, passwd FROM pgbouncer.get_auth($1)",
  ),
  /**
   * `auth_dbname` (PgBouncer 1.19+): the database the query runs in; the ini routes it in `[databases]` to
   * the same server (PgBouncer refuses lookups into a database it does not list).
   * @default unset: the query runs in the database the client asked for, so the function must exist in
   * every pooled database.
   */
  dbname: string(PG_IDENTIFIER, "a lower-case PostgreSQL identifier").optional(),
});
export type AuthQuerySettings = Infer<typeof AUTH_QUERY.shape>;
export const AUTH_QUERY_DEFAULTS = defaultsOf(AUTH_QUERY);

/**
 * A second application login, for rotations that refuse no backend (alternating users): two PostgreSQL login
 * roles, both in the auth file. A rotation changes the password of the one no backend uses, and moves Vault's
 * `currentKey` to it once every pod has the new auth file; backends follow at their own pace, and the other
 * login stays valid until the next rotation changes it. The first login is `appUserKey` / `appPasswordKey`.
 * (components/credentials/README.md, "Rotation")
 */
export const SECOND_LOGIN = section({
  /** Key of the second login's user name in the Vault secret. @default app_user_b */
  userKey: vaultKey("app_user_b"),
  /** Key of the second login's password (the password itself). @default app_password_b */
  passwordKey: vaultKey("app_password_b"),
  /**
   * Key whose value is the user name of the login backends should use now, one of the two: the
   * `connectionUrl` output's login. @default app_current
   */
  currentKey: vaultKey("app_current"),
});
export type SecondLoginSettings = Infer<typeof SECOND_LOGIN.shape>;

/** Where PgBouncer's credentials live in Vault (KV v2), and how clients authenticate. */
export const CREDENTIALS = section(
  {
    /**
     * `auth_type`. The auth file holds SCRAM verifiers (given in Vault, or computed from the password there).
     * @default scram-sha-256; md5 (deprecated by PostgreSQL) only when a stack asks for it
     */
    authType: oneOf(["scram-sha-256", "md5"]).default("scram-sha-256"),
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
    authFileSecret: oneOf(["password", "verifier"]).default("password").notWritten(),
    /** Path where the KV v2 engine is mounted. @default secret */
    vaultMount: string(VAULT_PATH, "a Vault mount path").default("secret").notWritten(),
    /** Name of the KV v2 secret under the mount that holds every key below. @default clipper/pgbouncer */
    vaultPath: string(VAULT_PATH, "a Vault secret path").default("clipper/pgbouncer").notWritten(),
    /**
     * Key of the application user's name in the Vault secret (file mode only). @default app_user
     */
    appUserKey: vaultKey("app_user"),
    /**
     * Key of the application user's secret in the Vault secret (file mode only): the password. With
     * `authFileSecret: verifier` it may also hold the SCRAM verifier copied from `pg_authid.rolpassword` (or
     * an `md5…` hash in md5 mode). @default app_password
     */
    appPasswordKey: vaultKey("app_password"),
    /**
     * Key of the stats user's password (the exporter's login; the user name is `exporter.statsUser`). It must
     * be the password itself: the exporter's connection string needs it. @default exporter_password
     */
    statsPasswordKey: vaultKey("exporter_password"),
    /**
     * `auth_query` mode, instead of listing the application user in the auth file; `appUserKey` and
     * `appPasswordKey` must then be left out. @default unset: file mode, the auth file lists the application
     * user and the stats user
     */
    authQuery: AUTH_QUERY.optional(),
    /**
     * A second application login in the auth file, so that a password rotation refuses no backend and rolls
     * no pod (file mode with `authFileSecret: password` only). @default unset: one application login
     */
    secondLogin: SECOND_LOGIN.optional(),
  },
  {
    check: (s, c) => {
      if (s.authQuery) {
        for (const field of ["appUserKey", "appPasswordKey", "authFileSecret"]) {
          if (c.has(field)) {
            c.add(
              field,
              `is not used when ${c.key("authQuery")} is set (auth_query mode looks application users up in ` +
                `PostgreSQL); remove one of them`,
            );
          }
        }
        if (s.authQuery.passwordKey === s.statsPasswordKey) {
          c.add(
            "authQuery.passwordKey",
            `is "${s.authQuery.passwordKey}"; must differ from ${c.key("statsPasswordKey")}`,
          );
        }
        if (s.secondLogin) {
          c.add(
            "secondLogin",
            `is not used when ${c.key("authQuery")} is set (auth_query mode looks application users up in ` +
              `PostgreSQL); remove one of them`,
          );
        }
      } else {
        const keys = [s.appUserKey, s.appPasswordKey, s.statsPasswordKey];
        if (new Set(keys).size !== keys.length) {
          c.add(
            "appUserKey",
            `appUserKey "${s.appUserKey}", appPasswordKey "${s.appPasswordKey}" and statsPasswordKey ` +
              `"${s.statsPasswordKey}" must be three different Vault keys`,
          );
        }
        const second = s.secondLogin;
        if (second) {
          const all = [...keys, second.userKey, second.passwordKey, second.currentKey];
          if (new Set(all).size !== all.length) {
            c.add(
              "secondLogin",
              `names the Vault keys ${[second.userKey, second.passwordKey, second.currentKey].map((k) => `"${k}"`).join(", ")}; ` +
                `each of the six keys of the two logins, the stats password and the current login must differ`,
            );
          }
          if (s.authFileSecret !== "password") {
            c.add(
              "secondLogin",
              `needs ${c.key("authFileSecret")} "password": a verifier in the auth file cannot log in to PostgreSQL ` +
                `as a login no client has used yet`,
            );
          }
        }
      }
    },
  },
).landsIn("pgbouncer.ini, in the pooler's ConfigMap");
export type CredentialSettings = Infer<typeof CREDENTIALS.shape>;
export const CREDENTIAL_DEFAULTS = defaultsOf(CREDENTIALS);
/** PgBouncer's `auth_type` values this program renders. */
export type AuthType = CredentialSettings["authType"];
/** What PgBouncer's auth file holds for the application user (file mode), see {@link CredentialSettings.authFileSecret}. */
export type AuthFileSecret = CredentialSettings["authFileSecret"];
