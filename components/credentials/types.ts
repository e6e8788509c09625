import type * as pulumi from "@pulumi/pulumi";
import type { Login } from "./login";
import type { AuthType } from "./settings";

/** How PgBouncer authenticates clients, as pgbouncer.ini says it (the auth file's path aside). */
export interface IniAuthSettings {
  /** `auth_type`. */
  readonly type: AuthType;
  /**
   * `auth_user` + `auth_query` (+ `auth_dbname`, 1.19+): secrets of users missing from the auth file are
   * looked up in PostgreSQL by this user.
   */
  readonly query?: { readonly user: string; readonly query: string; readonly dbname?: string };
}

/** What the PgBouncer component needs from the credentials layer; every value from Vault is a secret. */
export interface PoolerCredentials {
  /** Content of PgBouncer's auth_file (userlist.txt), a Pulumi secret. */
  readonly authFile: pulumi.Output<string>;
  /**
   * The exporter's `postgres://…@127.0.0.1:<port>/pgbouncer?sslmode=disable`, a Pulumi secret. The
   * component sends it through the process's unix socket instead (`socketConnectionString`): PgBouncer asks
   * TCP clients for TLS.
   */
  readonly exporterConnectionString: pulumi.Output<string>;
  /** How the ini authenticates (auth_type, and auth_query settings when that mode is chosen). */
  readonly iniAuth: IniAuthSettings;
  /** Logins the pods' server-login check opens per process (`serverLoginChecks`). */
  readonly serverLoginChecks: number;
  /**
   * The application's login (a Pulumi secret), from the same Vault read; or, when Vault holds a verifier
   * instead of the password or in auth_query mode, why there is none (a message without Vault values).
   */
  readonly appLogin: { readonly login: pulumi.Output<Login> } | { readonly unavailable: string };
}
