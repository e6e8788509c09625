import { ConfigReader } from "../common/config-reader";

/** Where PgBouncer's credentials live in Vault, and how clients authenticate. */
export interface CredentialSettings {
  /** `auth_type`. @default scram-sha-256 (md5 is deprecated by PostgreSQL; ask for it explicitly) */
  readonly authType: "scram-sha-256" | "md5";
  /** KV v2 mount. @default secret */
  readonly vaultMount: string;
  /** KV v2 secret name under the mount. @default clipper/pgbouncer */
  readonly vaultPath: string;
  /** PostgreSQL user the backend connects as. @default clipper */
  readonly appUser: string;
  /** Key of the application user's password in the Vault secret. @default app_password */
  readonly appPasswordKey: string;
  /** Key of the exporter's (stats user's) password in the Vault secret. @default exporter_password */
  readonly statsPasswordKey: string;
}

export const CREDENTIAL_DEFAULTS: CredentialSettings = {
  authType: "scram-sha-256",
  vaultMount: "secret",
  vaultPath: "clipper/pgbouncer",
  appUser: "clipper",
  appPasswordKey: "app_password",
  statsPasswordKey: "exporter_password",
};

const KEY = /^[A-Za-z0-9_.-]+$/;
const PATH = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

export function readCredentials(r: ConfigReader): CredentialSettings {
  const d = CREDENTIAL_DEFAULTS;
  const c: CredentialSettings = {
    authType: r.oneOf("authType", d.authType, ["scram-sha-256", "md5"]),
    vaultMount: r.string("vaultMount", d.vaultMount, PATH, "a Vault mount path"),
    vaultPath: r.string("vaultPath", d.vaultPath, PATH, "a Vault secret path"),
    appUser: r.string("appUser", d.appUser, /^[a-z_][a-z0-9_]{0,62}$/, "a lower-case PostgreSQL identifier"),
    appPasswordKey: r.string("appPasswordKey", d.appPasswordKey, KEY, "a Vault key name"),
    statsPasswordKey: r.string("statsPasswordKey", d.statsPasswordKey, KEY, "a Vault key name"),
  };
  r.rejectUnknown();
  return c;
}
