/**
 * A minimal PostgreSQL wire-protocol client (simple query protocol; trust, cleartext, md5 and SCRAM-SHA-256
 * logins; TLS with libpq's sslmode disable/require/verify-ca/verify-full, see `ClientTls`). The fault run needs clients that reconnect and time every transaction, which pgbench cannot do:
 * a pgbench client whose connection drops is aborted for good.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import type { ClientTls, Conn } from "./conn";
import { hmac, saltedPassword } from "./scram";

/** An ErrorResponse from the server, or a broken connection (`code` "08006"). */
export class PgError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly severity: string = "ERROR",
  ) {
    super(message);
    this.name = "PgError";
  }
}

export interface QueryResult {
  /** CommandComplete tags in order (e.g. "BEGIN", "UPDATE 1", "COMMIT"). */
  readonly tags: string[];
  /** Column names of the last result set. */
  readonly columns: string[];
  /** Rows of the last result set, text values. */
  readonly rows: (string | null)[][];
  /** Rows of every result set, in order (what psql prints for several statements). */
  readonly allRows: (string | null)[][];
}

interface Message {
  readonly type: string;
  readonly body: Buffer;
}

/**
 * Where a client may walk away from its login: after its StartupMessage, after its SCRAM client-first
 * message, or after its client-final message (proof sent, answer never read).
 */
export type HandshakeStage = "startup" | "client-first" | "client-final";

/** Thrown inside `startup` when the client leaves on purpose at the stage it was told. */
class Abandoned extends Error {}

/**
 * SaltedPassword by (password, salt, iterations): PgBouncer hands every client of a user the same salt, so a
 * burst of logins costs one PBKDF2 here instead of one per client (the server side is not affected).
 */
const saltedCache = new Map<string, Buffer>();
function cachedSaltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  const key = `${iterations}\0${salt.toString("base64")}\0${password}`;
  let v = saltedCache.get(key);
  if (!v) {
    v = saltedPassword(password, salt, iterations);
    if (saltedCache.size > 1000) saltedCache.clear();
    saltedCache.set(key, v);
  }
  return v;
}

function cstring(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, "utf8"), Buffer.from([0])]);
}

function frame(type: string | null, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  return type === null ? Buffer.concat([len, body]) : Buffer.concat([Buffer.from(type), len, body]);
}

function errorFields(body: Buffer): PgError {
  const fields: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]);
    const end = body.indexOf(0, i + 1);
    fields[code] = body.toString("utf8", i + 1, end);
    i = end + 1;
  }
  return new PgError(fields.M ?? "unknown error", fields.C ?? "XX000", fields.S ?? "ERROR");
}

/** One connection. Not safe for concurrent queries: await each before the next. */
export class PgClient {
  private buf: Buffer = Buffer.alloc(0);
  private waiters: ((m: Message | PgError) => void)[] = [];
  private queue: Message[] = [];
  private closedWith: PgError | undefined;
  /** BackendKeyData: what a cancel request must quote (PgBouncer hands out its own). */
  private key: { pid: number; secret: number } | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly tlsOpts: ClientTls | undefined,
  ) {
    socket.on("data", (d) => this.onData(d));
    const fail = (why: string) => {
      this.closedWith ??= new PgError(why, "08006", "FATAL");
      for (const w of this.waiters.splice(0)) w(this.closedWith);
    };
    socket.on("error", (e) => fail(`connection error: ${e.message}`));
    socket.on("close", () => fail("server closed the connection unexpectedly"));
  }

  /** Connects and logs in; rejects with a PgError on refusal or failed authentication. */
  static async connect(
    conn: Conn,
    opts: { timeoutMs?: number; applicationName?: string } = {},
  ): Promise<PgClient> {
    return PgClient.open(conn, opts);
  }

  /**
   * Starts a login and drops the connection at `stage`, as a client that crashes or times out halfway
   * does. Resolves once the socket is closed; rejects only when the server refused earlier than `stage`.
   */
  static async abandon(conn: Conn, stage: HandshakeStage, opts: { timeoutMs?: number } = {}): Promise<void> {
    try {
      const c = await PgClient.open(conn, { ...opts, abandonAfter: stage });
      c.close();
      throw new PgError(`the login finished before ${stage}: nothing was abandoned`, "XX000");
    } catch (e) {
      if (!(e instanceof Abandoned)) throw e;
    }
  }

  private static async open(
    conn: Conn,
    opts: { timeoutMs?: number; applicationName?: string; abandonAfter?: HandshakeStage },
  ): Promise<PgClient> {
    const raw = rawConnect(conn);
    raw.setNoDelay(true);
    let socket: net.Socket = raw;
    const timer = setTimeout(() => socket.destroy(new Error("timeout expired")), opts.timeoutMs ?? 10_000);
    try {
      await new Promise<void>((resolve, reject) => {
        raw.once("connect", resolve);
        raw.once("error", reject);
      });
      socket = await negotiateTls(raw, conn);
      const client = new PgClient(socket, conn.tls);
      await client.startup(conn, opts.applicationName ?? "clipper-load", opts.abandonAfter);
      return client;
    } catch (e) {
      socket.destroy();
      raw.destroy();
      throw e instanceof PgError || e instanceof Abandoned
        ? e
        : new PgError(`connection failed: ${(e as Error).message}`, "08006", "FATAL");
    } finally {
      clearTimeout(timer);
    }
  }

  /** The certificate the server presented (undefined without TLS). */
  get peerCertificate(): tls.PeerCertificate | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket.getPeerCertificate() : undefined;
  }

  /** The TLS socket's protocol ("TLSv1.3"), undefined without TLS. */
  get tlsProtocol(): string | undefined {
    return this.socket instanceof tls.TLSSocket ? (this.socket.getProtocol() ?? undefined) : undefined;
  }

  /** The socket itself: a test can tell that a connection still runs on the TLS session it began with. */
  get transport(): net.Socket {
    return this.socket;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 5) {
      const len = this.buf.readInt32BE(1);
      if (this.buf.length < len + 1) break;
      const m = { type: String.fromCharCode(this.buf[0]), body: this.buf.subarray(5, len + 1) };
      this.buf = this.buf.subarray(len + 1);
      const w = this.waiters.shift();
      if (w) w(m);
      else this.queue.push(m);
    }
  }

  private next(): Promise<Message> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) =>
      this.waiters.push((x) => (x instanceof PgError ? reject(x) : resolve(x))),
    );
  }

  private send(b: Buffer): void {
    this.socket.write(b);
  }

  private async startup(conn: Conn, appName: string, abandonAfter?: HandshakeStage): Promise<void> {
    const sent = (stage: HandshakeStage) => {
      if (abandonAfter !== stage) return;
      this.socket.destroy();
      throw new Abandoned(stage);
    };
    const params = Buffer.concat([
      Buffer.from([0, 3, 0, 0]),
      cstring("user"),
      cstring(conn.user),
      cstring("database"),
      cstring(conn.database),
      cstring("application_name"),
      cstring(appName),
      Buffer.from([0]),
    ]);
    this.send(frame(null, params));
    sent("startup");
    let scram: { nonce: string; firstBare: string; serverSignature?: Buffer } | undefined;
    for (;;) {
      const m = await this.next();
      if (m.type === "E") throw errorFields(m.body);
      if (m.type === "Z") return;
      if (m.type === "K") this.key = { pid: m.body.readInt32BE(0), secret: m.body.readInt32BE(4) };
      if (m.type !== "R") continue; // ParameterStatus, BackendKeyData, NoticeResponse
      const kind = m.body.readInt32BE(0);
      const password = conn.password ?? "";
      if (kind === 0) continue;
      if (kind === 3) {
        this.send(frame("p", cstring(password)));
      } else if (kind === 5) {
        const salt = m.body.subarray(4, 8);
        const inner = crypto
          .createHash("md5")
          .update(password + conn.user)
          .digest("hex");
        const outer = crypto
          .createHash("md5")
          .update(Buffer.concat([Buffer.from(inner), salt]))
          .digest("hex");
        this.send(frame("p", cstring(`md5${outer}`)));
      } else if (kind === 10) {
        const mechs = m.body.toString("utf8", 4).split("\0");
        if (!mechs.includes("SCRAM-SHA-256"))
          throw new PgError(`no supported SASL mechanism in ${mechs.join(",")}`, "28000");
        const nonce = crypto.randomBytes(18).toString("base64");
        const firstBare = `n=,r=${nonce}`;
        const first = Buffer.from(`n,,${firstBare}`);
        const len = Buffer.alloc(4);
        len.writeInt32BE(first.length);
        this.send(frame("p", Buffer.concat([cstring("SCRAM-SHA-256"), len, first])));
        scram = { nonce, firstBare };
        sent("client-first");
      } else if (kind === 11 && scram) {
        const serverFirst = m.body.toString("utf8", 4);
        const attrs = Object.fromEntries(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]));
        if (!attrs.r?.startsWith(scram.nonce)) throw new PgError("SCRAM: server nonce mismatch", "28000");
        const salted = cachedSaltedPassword(password, Buffer.from(attrs.s, "base64"), Number(attrs.i));
        const clientKey = hmac(salted, "Client Key");
        const storedKey = crypto.createHash("sha256").update(clientKey).digest();
        const finalNoProof = `c=biws,r=${attrs.r}`;
        const authMessage = `${scram.firstBare},${serverFirst},${finalNoProof}`;
        const signature = hmac(storedKey, authMessage);
        const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
        scram.serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
        this.send(frame("p", Buffer.from(`${finalNoProof},p=${proof.toString("base64")}`)));
        sent("client-final");
      } else if (kind === 12 && scram) {
        const v = /v=([^,]+)/.exec(m.body.toString("utf8", 4))?.[1];
        if (!scram.serverSignature || v !== scram.serverSignature.toString("base64")) {
          throw new PgError("SCRAM: server signature mismatch", "28000");
        }
      } else {
        throw new PgError(`unsupported authentication request ${kind}`, "28000");
      }
    }
  }

  /** Runs one simple query (may hold several statements); rejects with the first error. */
  async query(sql: string): Promise<QueryResult> {
    this.send(frame("Q", cstring(sql)));
    const tags: string[] = [];
    let rows: (string | null)[][] = [];
    const allRows: (string | null)[][] = [];
    let columns: string[] = [];
    let error: PgError | undefined;
    for (;;) {
      const m = await this.next();
      switch (m.type) {
        case "T": {
          rows = [];
          columns = [];
          const n = m.body.readInt16BE(0);
          let off = 2;
          for (let i = 0; i < n; i++) {
            const end = m.body.indexOf(0, off);
            columns.push(m.body.toString("utf8", off, end));
            off = end + 1 + 18;
          }
          break;
        }
        case "D": {
          const n = m.body.readInt16BE(0);
          const row: (string | null)[] = [];
          let off = 2;
          for (let i = 0; i < n; i++) {
            const len = m.body.readInt32BE(off);
            off += 4;
            if (len < 0) row.push(null);
            else {
              row.push(m.body.toString("utf8", off, off + len));
              off += len;
            }
          }
          rows.push(row);
          allRows.push(row);
          break;
        }
        case "C":
          tags.push(m.body.toString("utf8", 0, m.body.length - 1));
          break;
        case "E":
          error ??= errorFields(m.body);
          if (error.severity === "FATAL" || error.severity === "PANIC") {
            this.socket.destroy();
            throw error;
          }
          break;
        case "Z":
          if (error) throw error;
          return { tags, columns, rows, allRows };
        default:
          break; // NoticeResponse, ParameterStatus, EmptyQueryResponse
      }
    }
  }

  /** Runs one query and returns its rows keyed by column name (works on PgBouncer's admin console). */
  async records(sql: string): Promise<Record<string, string>[]> {
    const r = await this.query(sql);
    return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i] ?? ""])));
  }

  /** The client's own TCP port (what PgBouncer's SHOW CLIENTS lists as `port`); undefined on a unix socket. */
  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  /**
   * Sends a CancelRequest for this connection's running query on a new connection to `conn` (as libpq
   * does). Behind several PgBouncer processes on one port, that connection may reach a process that does
   * not know the key: without peering (1.19+) the cancel is then lost.
   *
   * Sent as this connection's `ClientTls.cancel` says: in the clear by default, as libpq's PQcancel sends
   * it (PgBouncer and PostgreSQL read a CancelRequest before any TLS check), or inside TLS (same sslmode and
   * checks as the login), as libpq 17's PQcancelCreate does; never inside TLS over a unix socket. Resolves
   * with the TLS protocol it travelled in, or undefined when it went in the clear.
   */
  async cancel(conn: Pick<Conn, "host" | "port">): Promise<string | undefined> {
    return (await this.openCancel(conn)).send();
  }

  /**
   * {@link cancel} in two steps: the connection (and its TLS) now, the CancelRequest at `send()`. Several
   * cancels opened first and sent in one tick reach the server together, as a burst of timeouts sends them.
   */
  async openCancel(conn: Pick<Conn, "host" | "port">): Promise<{ send(): Promise<string | undefined> }> {
    const key = this.key;
    if (!key) throw new Error("no BackendKeyData received");
    const body = Buffer.alloc(12);
    body.writeInt32BE(80877102, 0);
    body.writeInt32BE(key.pid, 4);
    body.writeInt32BE(key.secret, 8);
    const t = this.tlsOpts;
    const overTls =
      t !== undefined && t.sslmode !== "disable" && t.cancel === "tls" && !conn.host.startsWith("/");
    const raw = rawConnect(conn);
    let s: net.Socket = raw;
    s.setTimeout(5000, () => s.destroy());
    await new Promise<void>((resolve, reject) => {
      raw.once("connect", resolve);
      raw.once("error", reject);
      raw.once("close", () => reject(new Error("the cancel connection closed before it was made")));
    });
    if (overTls) {
      s = await negotiateTls(raw, { ...conn, tls: t });
      s.setTimeout(5000, () => s.destroy());
    }
    const protocol = s instanceof tls.TLSSocket ? (s.getProtocol() ?? undefined) : undefined;
    let failed: Error | undefined;
    // PgBouncer and PostgreSQL close (or reset) the cancel connection without an answer
    s.on("error", (e: NodeJS.ErrnoException) => (failed ??= e.code === "ECONNRESET" ? undefined : e));
    const closed = new Promise<string | undefined>((resolve, reject) =>
      s.once("close", () => (failed ? reject(failed) : resolve(protocol))),
    );
    closed.catch(() => undefined);
    return {
      send: () => {
        // like libpq: send, then wait for the other side to close; a half-close makes PgBouncer drop the request
        s.write(frame(null, body));
        return closed;
      },
    };
  }

  /** Sends Terminate and closes. */
  close(): void {
    if (!this.socket.destroyed) {
      this.socket.end(frame("X", Buffer.alloc(0)));
      this.socket.destroy();
    }
  }

  get closed(): boolean {
    return this.closedWith !== undefined || this.socket.destroyed;
  }
}

function rawConnect(conn: Pick<Conn, "host" | "port">): net.Socket {
  return conn.host.startsWith("/")
    ? net.connect({ path: `${conn.host}/.s.PGSQL.${conn.port}` })
    : net.connect({ host: conn.host, port: conn.port });
}

/** SSLRequest's code (PostgreSQL's NEGOTIATE_SSL_CODE). */
const SSL_REQUEST = 80877103;

/**
 * The TLS context of the clients that trust `ca` (PEM; "" for Node's bundled roots), made once: making one took
 * a fifth of a handshake's CPU (1.71 against 1.37 CPU-ms a connection, client and server in one Node process:
 * 300 `tls.connect`s over loopback to a `tls.createServer`, with `ca` given each time against one
 * `secureContext`, 2026-12-07). Keyed by the CA's text, read at every connection: a CA file replaced in place
 * is used from the next connection on, as libpq reads it (tls/postgres-hostssl.test.ts).
 */
const secureContexts = new Map<string, tls.SecureContext>();
function secureContextFor(ca: string): tls.SecureContext {
  let c = secureContexts.get(ca);
  if (!c) {
    c = tls.createSecureContext(ca ? { ca } : {});
    secureContexts.set(ca, c);
  }
  return c;
}

/**
 * libpq's sslmode on a connected socket (`prefer` when the Conn says nothing, as libpq): `disable` (or a
 * unix socket) leaves it as it is; otherwise an SSLRequest, and on "S" a TLS handshake with the checks the
 * mode asks for ("N": plain under `prefer`, refused otherwise). The errors are what a user of
 * Node's TLS would read: "unable to verify the first certificate" (a CA that did not sign the server's
 * certificate), "Hostname/IP does not match certificate's altnames: …" (verify-full, a name not in the SANs).
 */
async function negotiateTls(raw: net.Socket, conn: Pick<Conn, "host" | "port" | "tls">): Promise<net.Socket> {
  const t: ClientTls = conn.tls ?? { sslmode: "prefer" };
  if (t.sslmode === "disable" || conn.host.startsWith("/")) return raw;
  const verify = t.sslmode === "verify-ca" || t.sslmode === "verify-full";
  if (verify && !t.rootCertFile) {
    throw new PgError(`sslmode ${t.sslmode} needs a root certificate file (rootCertFile)`, "08006", "FATAL");
  }
  const req = Buffer.alloc(8);
  req.writeInt32BE(8, 0);
  req.writeInt32BE(SSL_REQUEST, 4);
  const answer = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      cleanup();
      if (d.length !== 1) {
        // the server must answer alone: bytes after the "S" would be read outside TLS (CVE-2021-23222)
        reject(new PgError("received unencrypted data after SSL response", "08006", "FATAL"));
        return;
      }
      resolve(d.toString("latin1"));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onClose = () => {
      cleanup();
      reject(new PgError("server closed the connection during the SSL request", "08006", "FATAL"));
    };
    const cleanup = () => {
      raw.off("data", onData);
      raw.off("error", onError);
      raw.off("close", onClose);
    };
    raw.on("data", onData);
    raw.once("error", onError);
    raw.once("close", onClose);
    raw.write(req);
  });
  if (answer === "N") {
    if (t.sslmode === "prefer") return raw;
    throw new PgError("server does not support SSL, but SSL was required", "08006", "FATAL");
  }
  if (answer !== "S")
    throw new PgError(`received invalid response to SSL negotiation: ${answer}`, "08006", "FATAL");
  const name = t.hostname ?? conn.host;
  const socket = tls.connect({
    socket: raw,
    ...(net.isIP(name) ? {} : { servername: name }),
    secureContext: secureContextFor(t.rootCertFile ? fs.readFileSync(t.rootCertFile, "utf8") : ""),
    rejectUnauthorized: verify,
    // verify-ca checks the chain only; verify-full also the name, as Node's own check does it
    checkServerIdentity: (_host, cert) =>
      t.sslmode === "verify-full" ? tls.checkServerIdentity(name, cert) : undefined,
  });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  }).catch((e: Error) => {
    socket.destroy();
    throw new PgError(e.message, "08006", "FATAL");
  });
  return socket;
}
