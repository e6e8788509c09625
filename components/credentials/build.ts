/**
 * From the keys of one Vault secret to PgBouncer's auth file and the exporter's connection string, as plain
 * text, without Pulumi. Every problem is collected and thrown at once, naming the Vault mount, path and key
 * and never the value (./problems.ts); the caller wraps the results in `pulumi.secret` immediately.
 */
import { appUserLine, authUserLine, fileSecret, secondLoginLine } from "./auth-entries";
import { serverLoginChecks } from "./login";
import { VaultCredentialError, needsPassword } from "./problems";
import { VaultSecretReader } from "./secret-reader";
import { authFileLine, exporterConnectionString, userNameProblem } from "./secrets";
import type { CredentialSettings } from "./settings";
import type { IniAuthSettings } from "./types";
import { vaultKeys } from "./vault-keys";

/** What the credentials need from the rest of the stack settings. */
export interface CredentialContext {
  /** The exporter's PgBouncer user (`exporter.statsUser`); listed in `stats_users`. */
  readonly statsUser: string;
  /**
   * PgBouncer's client port in the pod (`pgbouncer.port`): the port of its unix socket, through which the
   * component points the exporter (`socketConnectionString`).
   */
  readonly pgbouncerPort: number;
}

/** One KV v2 secret as read. */
export interface VaultSecretData {
  readonly data: Readonly<Record<string, string>>;
  /** The current version is deleted or destroyed (KV v2 then returns no data). */
  readonly deleted?: boolean;
}

/** The credentials in plain text; only {@link buildCredentials}'s caller ever holds them. */
export interface PlainCredentials {
  readonly authFile: string;
  readonly exporterConnectionString: string;
  readonly iniAuth: IniAuthSettings;
  /** Logins the pods' server-login check opens per process (`serverLoginChecks`). */
  readonly serverLoginChecks: number;
}

export function buildCredentials(
  settings: CredentialSettings,
  ctx: CredentialContext,
  secret: VaultSecretData,
): PlainCredentials {
  // A stack setting, validated with the others; checked again because the auth file quotes it.
  const statsBad = userNameProblem(ctx.statsUser);
  if (statsBad) throw new Error(`exporter.statsUser ${statsBad}`);
  const r = new VaultSecretReader(settings, secret.data);
  if (secret.deleted) {
    // Name every key the stack reads: the person fixing it writes a new version holding all of them.
    for (const { key, setting } of vaultKeys(settings)) {
      r.problem(
        key,
        setting,
        "cannot be read: the secret's current version is deleted or destroyed; write a new version",
      );
    }
    throw new VaultCredentialError(r.problems);
  }
  const statsPassword = r.password(
    settings.statsPasswordKey,
    "statsPasswordKey",
    needsPassword("the exporter's connection string"),
  );
  const q = settings.authQuery;
  const first = q ? authUserLine(r, q, ctx.statsUser) : appUserLine(r, settings, ctx.statsUser);
  const second = q
    ? undefined
    : secondLoginLine(r, settings, secret.data[settings.appUserKey], ctx.statsUser);
  const iniAuth: IniAuthSettings = q
    ? {
        type: settings.authType,
        query: { user: q.user, query: q.query, ...(q.dbname !== undefined ? { dbname: q.dbname } : {}) },
      }
    : { type: settings.authType };
  // A verifier is enough here: the stats user only logs in to PgBouncer's admin console, never to PostgreSQL.
  const stats =
    statsPassword === undefined
      ? undefined
      : authFileLine(ctx.statsUser, fileSecret(settings.authType, ctx.statsUser, statsPassword));
  if (r.problems.length > 0 || stats === undefined || statsPassword === undefined) {
    throw new VaultCredentialError(r.problems);
  }
  return {
    authFile:
      [...(first === undefined ? [] : [first]), ...(second === undefined ? [] : [second]), stats].join("\n") +
      "\n",
    exporterConnectionString: exporterConnectionString(ctx.statsUser, statsPassword, ctx.pgbouncerPort),
    iniAuth,
    serverLoginChecks: serverLoginChecks(settings),
  };
}
