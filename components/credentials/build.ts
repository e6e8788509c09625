/**
 * From the keys of one Vault secret to PgBouncer's auth file and the exporter's connection string, as plain
 * text, without Pulumi. Every problem is collected and thrown at once, naming the Vault mount, path and key
 * and never the value; the caller wraps the results in `pulumi.secret` immediately.
 */
import {
  authFileLine,
  exporterConnectionString,
  md5Secret,
  parseScramVerifier,
  passwordProblem,
  scramVerifier,
  secretKind,
  type SecretKind,
  userNameProblem,
} from "./secrets";
import { type CredentialSettings, vaultKeys } from "./settings";
import type { IniAuthSettings } from "./types";

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

export interface CredentialProblem {
  readonly mount: string;
  readonly path: string;
  /** The Vault key, or undefined when the whole secret is at fault. */
  readonly key?: string;
  /** The `credentials` setting that names that key. */
  readonly setting?: string;
  readonly message: string;
}

function describe(p: CredentialProblem): string {
  const where = `Vault KV v2 mount "${p.mount}" path "${p.path}"`;
  if (p.key === undefined) return `${where}: ${p.message}`;
  return `${where} key "${p.key}"${p.setting ? ` (credentials.${p.setting})` : ""}: ${p.message}`;
}

/** Thrown before any resource is registered; the message never contains a value read from Vault. */
export class VaultCredentialError extends Error {
  constructor(readonly problems: readonly CredentialProblem[]) {
    super(
      `PgBouncer credentials refused (${problems.length} ${problems.length === 1 ? "problem" : "problems"}):\n` +
        problems.map((p) => `  - ${describe(p)}`).join("\n"),
    );
    this.name = "VaultCredentialError";
  }
}

/** The credentials in plain text; only {@link buildCredentials}'s caller ever holds them. */
export interface PlainCredentials {
  readonly authFile: string;
  readonly exporterConnectionString: string;
  readonly iniAuth: IniAuthSettings;
}

export function buildCredentials(
  settings: CredentialSettings,
  ctx: CredentialContext,
  secret: VaultSecretData,
): PlainCredentials {
  // A stack setting, validated with the others; checked again because the auth file quotes it.
  const statsBad = userNameProblem(ctx.statsUser);
  if (statsBad) throw new Error(`exporter.statsUser ${statsBad}`);
  const problems: CredentialProblem[] = [];
  const at = { mount: settings.vaultMount, path: settings.vaultPath };
  const problem = (key: string, setting: string, message: string) =>
    problems.push({ ...at, key, setting, message });

  if (secret.deleted) {
    // Name every key the stack reads: the person fixing it writes a new version holding all of them.
    for (const { key, setting } of vaultKeys(settings)) {
      problem(
        key,
        setting,
        "cannot be read: the secret's current version is deleted or destroyed; write a new version",
      );
    }
    throw new VaultCredentialError(problems);
  }
  const present = Object.keys(secret.data).sort();

  /** The value of `key`, or undefined after recording why it is missing. */
  const read = (key: string, setting: string): string | undefined => {
    const v = secret.data[key];
    if (v === undefined) {
      problem(
        key,
        setting,
        `is missing from the secret (keys present: ${present.length ? present.join(", ") : "none"})`,
      );
    }
    return v;
  };

  /**
   * A password the program itself must know: for the exporter, for PgBouncer's own login, or for the auth
   * file. `refusal` says why a verifier or hash will not do.
   */
  const readPassword = (
    key: string,
    setting: string,
    refusal: (kind: SecretKind) => string,
  ): string | undefined => {
    const v = read(key, setting);
    if (v === undefined) return undefined;
    if (v !== "" && secretKind(v) !== "password") {
      problem(key, setting, refusal(secretKind(v)));
      return undefined;
    }
    const bad = passwordProblem(v);
    if (bad) {
      problem(key, setting, bad);
      return undefined;
    }
    return v;
  };
  const needs = (who: string) => (kind: SecretKind) =>
    `holds a ${kind}, but ${who} needs the password itself`;

  /** The auth file's secret for a user whose login only PgBouncer checks. */
  const fileSecret = (user: string, password: string): string =>
    settings.authType === "md5" ? md5Secret(user, password) : scramVerifier(user, password);

  /** `authFileSecret: verifier`: a verifier (or md5 hash) as given, or derived from the password. */
  const verifierEntry = (value: string, user: string | undefined): string | undefined => {
    const kind = secretKind(value);
    if (kind === "scram-verifier") {
      if (parseScramVerifier(value)) return value;
      problem(
        settings.appPasswordKey,
        "appPasswordKey",
        "starts like a SCRAM-SHA-256 verifier but is not one " +
          "(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, as in pg_authid)",
      );
      return undefined;
    }
    if (kind === "md5-hash") {
      if (settings.authType === "md5") return value;
      problem(
        settings.appPasswordKey,
        "appPasswordKey",
        "holds an md5 hash, which cannot answer scram-sha-256; store the password or the SCRAM verifier " +
          "from pg_authid (or set credentials.authType md5)",
      );
      return undefined;
    }
    const bad = passwordProblem(value);
    if (bad) problem(settings.appPasswordKey, "appPasswordKey", bad);
    return bad || user === undefined ? undefined : fileSecret(user, value);
  };

  const lines: string[] = [];
  const statsPassword = readPassword(
    settings.statsPasswordKey,
    "statsPasswordKey",
    needs("the exporter's connection string"),
  );

  let iniAuth: IniAuthSettings;
  const q = settings.authQuery;
  if (q) {
    iniAuth = {
      type: settings.authType,
      query: { user: q.user, query: q.query, ...(q.dbname !== undefined ? { dbname: q.dbname } : {}) },
    };
    // PgBouncer logs in as auth_user with no client whose SCRAM proof it could reuse: this entry must be
    // the password (a verifier would only let clients in, never PgBouncer out).
    const pw = readPassword(
      q.passwordKey,
      "authQuery.passwordKey",
      needs("PgBouncer's own login as auth_user"),
    );
    if (q.user === ctx.statsUser) {
      problem(q.passwordKey, "authQuery.passwordKey", `authQuery.user "${q.user}" is also the stats user`);
    } else if (pw !== undefined) {
      lines.push(authFileLine(q.user, pw));
    }
  } else {
    iniAuth = { type: settings.authType };
    const user = read(settings.appUserKey, "appUserKey");
    const userBad = user === undefined ? undefined : userNameProblem(user);
    if (userBad) problem(settings.appUserKey, "appUserKey", userBad);
    else if (user === ctx.statsUser) {
      problem(settings.appUserKey, "appUserKey", "names the stats user; the application needs its own user");
    }
    let entry: string | undefined;
    if (settings.authFileSecret === "password") {
      entry = readPassword(settings.appPasswordKey, "appPasswordKey", (kind) =>
        verifierInPasswordMode(settings, kind),
      );
    } else {
      const value = read(settings.appPasswordKey, "appPasswordKey");
      if (value !== undefined)
        entry = verifierEntry(value, user !== undefined && !userBad ? user : undefined);
    }
    if (user !== undefined && !userBad && user !== ctx.statsUser && entry !== undefined) {
      lines.push(authFileLine(user, entry));
    }
  }

  // A verifier is enough here: the stats user only logs in to PgBouncer's admin console, never to PostgreSQL.
  if (statsPassword !== undefined)
    lines.push(authFileLine(ctx.statsUser, fileSecret(ctx.statsUser, statsPassword)));

  if (problems.length > 0 || statsPassword === undefined) throw new VaultCredentialError(problems);
  return {
    authFile: lines.join("\n") + "\n",
    exporterConnectionString: exporterConnectionString(ctx.statsUser, statsPassword, ctx.pgbouncerPort),
    iniAuth,
  };
}

/**
 * Why a verifier or hash in Vault is refused under `authFileSecret: password`, and what to store instead: the
 * upgrade path of a stack that kept a verifier there before `password` became the default.
 */
export function verifierInPasswordMode(settings: CredentialSettings, kind: SecretKind): string {
  const what = kind === "scram-verifier" ? "a SCRAM verifier" : "an md5 hash";
  return (
    `holds ${what}, but credentials.authFileSecret is "password" (the default): PgBouncer logs in to ` +
    `PostgreSQL with the password itself, so that no client login can lock it out. Store the application ` +
    `user's password under this key instead (vault kv patch -mount=${settings.vaultMount} ` +
    `${settings.vaultPath} ${settings.appPasswordKey}=<password>); PostgreSQL's password can then be set any ` +
    `ordinary way. To keep ${what}, set credentials.authFileSecret: verifier (refused in prod: one wrong ` +
    `password can lock every login out until PgBouncer restarts; docs/runbook.md, "Authentication failures")`
  );
}
