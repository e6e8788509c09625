/**
 * SCRAM-SHA-256 secrets in PostgreSQL's `pg_authid` format (RFC 5802/7677), and PgBouncer's auth file.
 * A secret in the auth file lets PgBouncer check a client's password and also log in to PostgreSQL.
 */
import * as crypto from "node:crypto";

export interface ScramOptions {
  /** @default 16 random bytes */
  readonly salt?: Buffer;
  /** @default 4096, PostgreSQL's `scram_iterations` default */
  readonly iterations?: number;
}

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return crypto.createHmac("sha256", key).update(data).digest();
}

export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return crypto.pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
}

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as PostgreSQL stores it. */
export function scramSecret(password: string, opts: ScramOptions = {}): string {
  const salt = opts.salt ?? crypto.randomBytes(16);
  const iterations = opts.iterations ?? 4096;
  const salted = saltedPassword(password, salt, iterations);
  const storedKey = crypto.createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  return (
    `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}` +
    `$${storedKey.toString("base64")}:${serverKey.toString("base64")}`
  );
}

/** One auth file line: `"user" "secret"`, double quotes doubled. */
export function authFileLine(user: string, secret: string): string {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return `${q(user)} ${q(secret)}`;
}

/** A whole auth file. */
export function authFileText(entries: readonly { user: string; secret: string }[]): string {
  return entries.map((e) => authFileLine(e.user, e.secret)).join("\n") + "\n";
}
