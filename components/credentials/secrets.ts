/**
 * The secrets PgBouncer's auth file holds, computed without Pulumi: SCRAM-SHA-256 verifiers (RFC 5802 and
 * RFC 7677, in PostgreSQL's `pg_authid` form), md5 hashes, and the checks that keep a value PgBouncer or
 * PostgreSQL would read differently out of the file.
 */
import * as crypto from "node:crypto";

/** PostgreSQL's default `scram_iterations`; verifiers computed here use it. */
export const SCRAM_ITERATIONS = 4096;
/** PostgreSQL's salt length for SCRAM verifiers. */
export const SCRAM_SALT_BYTES = 16;
/** PostgreSQL truncates longer names (NAMEDATALEN 64). */
export const MAX_USER_NAME_BYTES = 63;

const B64 = "[A-Za-z0-9+/]+={0,2}";
const SCRAM_SECRET = new RegExp(`^SCRAM-SHA-256\\$([1-9][0-9]*):(${B64})\\$(${B64}):(${B64})$`);
const MD5_SECRET = /^md5[0-9a-f]{32}$/;

/** The parts of a SCRAM-SHA-256 verifier `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. */
export interface ScramVerifier {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

function hmac(key: Buffer, text: string | Buffer): Buffer {
  return crypto.createHmac("sha256", key).update(text).digest();
}

/** SaltedPassword, ClientKey, StoredKey and ServerKey of RFC 5802 section 3, with SHA-256. */
export function scramKeys(
  password: string,
  salt: Buffer,
  iterations: number,
): { saltedPassword: Buffer; clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const saltedPassword = crypto.pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256");
  const clientKey = hmac(saltedPassword, "Client Key");
  return {
    saltedPassword,
    clientKey,
    storedKey: crypto.createHash("sha256").update(clientKey).digest(),
    serverKey: hmac(saltedPassword, "Server Key"),
  };
}

export function formatScramVerifier(v: ScramVerifier): string {
  return (
    `SCRAM-SHA-256$${v.iterations}:${v.salt.toString("base64")}` +
    `$${v.storedKey.toString("base64")}:${v.serverKey.toString("base64")}`
  );
}

/** The verifier's parts, or undefined when `text` is not a well-formed SCRAM-SHA-256 verifier. */
export function parseScramVerifier(text: string): ScramVerifier | undefined {
  const m = SCRAM_SECRET.exec(text);
  if (!m) return undefined;
  const v = {
    iterations: Number(m[1]),
    salt: Buffer.from(m[2], "base64"),
    storedKey: Buffer.from(m[3], "base64"),
    serverKey: Buffer.from(m[4], "base64"),
  };
  if (v.storedKey.length !== 32 || v.serverKey.length !== 32 || v.salt.length === 0) return undefined;
  return v;
}

/**
 * The salt of a verifier computed here. It must be deterministic, or every `pulumi up` would write a new
 * auth file and roll the pods; and it must change with the password, so that PostgreSQL's copy (set from
 * this verifier) and ours always agree. PostgreSQL hands the salt to any client that starts a login, so it
 * is derived with the same PBKDF2 cost as the verifier itself: it lets nobody test a guess more cheaply than
 * a stolen verifier would.
 */
export function derivedSalt(user: string, password: string, iterations = SCRAM_ITERATIONS): Buffer {
  const domain = Buffer.from(`clipper-pgbouncer scram salt\0${user}`, "utf8");
  return crypto.pbkdf2Sync(Buffer.from(password, "utf8"), domain, iterations, SCRAM_SALT_BYTES, "sha256");
}

/**
 * The SCRAM-SHA-256 verifier of `password` in `pg_authid` form, with a salt derived from user and password.
 * `ALTER ROLE <user> PASSWORD '<verifier>'` makes PostgreSQL store exactly this, which PgBouncer needs to
 * log in to PostgreSQL with the keys a SCRAM client proved.
 */
export function scramVerifier(user: string, password: string, iterations = SCRAM_ITERATIONS): string {
  const salt = derivedSalt(user, password, iterations);
  const { storedKey, serverKey } = scramKeys(password, salt, iterations);
  return formatScramVerifier({ iterations, salt, storedKey, serverKey });
}

/** PostgreSQL's md5 form: `"md5" + md5(password + user)`. */
export function md5Secret(user: string, password: string): string {
  return (
    "md5" +
    crypto
      .createHash("md5")
      .update(password + user, "utf8")
      .digest("hex")
  );
}

/** What kind of secret a Vault value is. */
export type SecretKind = "scram-verifier" | "md5-hash" | "password";

export function secretKind(value: string): SecretKind {
  if (value.startsWith("SCRAM-SHA-256$")) return "scram-verifier";
  if (MD5_SECRET.test(value)) return "md5-hash";
  return "password";
}

/** Why PgBouncer's auth file or PostgreSQL cannot take `name` as a user name; undefined when it can. */
export function userNameProblem(name: string): string | undefined {
  if (name === "") return "is empty; a user name is required";
  if (Buffer.byteLength(name, "utf8") > MAX_USER_NAME_BYTES) {
    return `is ${Buffer.byteLength(name, "utf8")} bytes long; PostgreSQL user names have at most ${MAX_USER_NAME_BYTES}`;
  }
  if (name.includes('"')) return "contains a double quote, which the auth file cannot carry in a user name";
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(name)) {
    return "contains whitespace or a control character, which PgBouncer cannot quote in a user name";
  }
  return undefined;
}

/**
 * Why a plaintext password cannot be used; undefined when it can. Only printable ASCII is accepted: PostgreSQL
 * and libpq run other text through SASLprep before hashing, which this program does not reproduce, so a
 * verifier computed here could disagree with the one the server computes.
 */
export function passwordProblem(password: string): string | undefined {
  if (password === "") return "is empty; a password is required";
  if (!/^[\x20-\x7e]+$/.test(password)) {
    return (
      "contains a character outside printable ASCII (a control character, a line break or non-ASCII text); " +
      "store a password of printable ASCII, or the SCRAM verifier from pg_authid"
    );
  }
  return undefined;
}

/** One quoted field of the auth file: PgBouncer reads `""` inside quotes as one `"`. */
export function quoteAuthField(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

export function authFileLine(user: string, secret: string): string {
  return `${quoteAuthField(user)} ${quoteAuthField(secret)}`;
}

const AUTH_FILE_LINE = /^"((?:[^"]|"")*)"\s+"((?:[^"]|"")*)"/;

/**
 * The auth file's entries, `user → secret`, read as PgBouncer reads the lines {@link authFileLine} writes
 * (two quoted fields, `""` for `"`; anything after them ignored). Lines that are not entries (blank,
 * comments) are skipped; a user listed twice keeps its last secret.
 */
export function parseAuthFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = AUTH_FILE_LINE.exec(line.trim());
    if (m) out.set(m[1].replace(/""/g, '"'), m[2].replace(/""/g, '"'));
  }
  return out;
}

/** The exporter's libpq URL to PgBouncer's admin console in the same pod. */
export function exporterConnectionString(user: string, password: string, port: number): string {
  return (
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}` +
    `@127.0.0.1:${port}/pgbouncer?sslmode=disable`
  );
}
