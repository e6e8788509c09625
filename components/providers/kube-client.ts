/**
 * Reads from the stack's pinned cluster before anything is registered (the preflight): a GET of one API path
 * with the pinned context's credentials, as kubectl would send it (its CA or `insecure-skip-tls-verify`, its
 * client certificate, token, token file, basic auth or exec credential plugin). No Kubernetes client library:
 * the provider does the writing; this only asks whether an object is there.
 */
import { execFile } from "child_process";
import * as https from "https";
import type { KubeCluster, KubeUser } from "./kubeconfig";
import type { ClusterTarget, ShellEnv } from "./targets";

/** What the preflight reads the cluster with. */
export interface ClusterReader {
  /** How messages name the cluster: `the cluster of context "clipper-prod" (https://…)`. */
  readonly describe: string;
  /**
   * GETs an API path (`/api/v1/namespaces/clipper/configmaps/postgres-ca`): the object, or undefined when the
   * API server answers 404. Rejects with a {@link ClusterReadError} otherwise.
   */
  get(apiPath: string): Promise<Record<string, unknown> | undefined>;
}

/** A read the API server refused (`status`), or one that never reached it (`status` undefined). */
export class ClusterReadError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "ClusterReadError";
  }
}

export interface ClusterReaderOptions {
  /** The environment of an exec credential plugin. */
  readonly env: ShellEnv;
  /** A file's text (a CA, a client certificate, a token file), or undefined when it does not exist. */
  readonly readFile: (file: string) => string | undefined;
  /** Per request. @default 10000 */
  readonly timeoutMs?: number;
}

interface Credentials {
  readonly headers: Record<string, string>;
  readonly cert?: string;
  readonly key?: string;
}

function fromBase64(data: string): string {
  return Buffer.from(data, "base64").toString("utf8");
}

function fileText(readFile: ClusterReaderOptions["readFile"], file: string, what: string): string {
  const text = readFile(file);
  if (text === undefined) throw new ClusterReadError(`the kubeconfig's ${what} ${file} does not exist`);
  return text;
}

/**
 * A kubeconfig PEM given inline (`<what>-data`, base64) or by file (`<what>`): the inline one first, as
 * kubectl reads them; undefined when neither is set.
 */
function pemOf(
  readFile: ClusterReaderOptions["readFile"],
  data: string | undefined,
  file: string | undefined,
  what: string,
): string | undefined {
  if (data !== undefined) return fromBase64(data);
  return file !== undefined ? fileText(readFile, file, what) : undefined;
}

/** Runs an exec credential plugin (client.authentication.k8s.io ExecCredential) and returns its credential. */
async function execCredential(
  user: KubeUser,
  cluster: KubeCluster,
  o: ClusterReaderOptions,
): Promise<{ token?: string; cert?: string; key?: string }> {
  const exec = user.exec;
  if (!exec) return {};
  const apiVersion = exec.apiVersion ?? "client.authentication.k8s.io/v1";
  const info = {
    apiVersion,
    kind: "ExecCredential",
    spec: {
      interactive: false,
      ...(exec.provideClusterInfo
        ? {
            cluster: {
              server: cluster.server,
              ...(cluster.certificateAuthorityData
                ? { "certificate-authority-data": cluster.certificateAuthorityData }
                : {}),
              ...(cluster.insecureSkipTlsVerify ? { "insecure-skip-tls-verify": true } : {}),
            },
          }
        : {}),
    },
  };
  const env: NodeJS.ProcessEnv = {
    ...o.env,
    ...Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value])),
    KUBERNETES_EXEC_INFO: JSON.stringify(info),
  };
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(exec.command, [...(exec.args ?? [])], { env, timeout: 60_000 }, (err, out, errOut) => {
      if (err) {
        const detail = errOut.trim().split("\n").slice(-1)[0] ?? err.message;
        reject(
          new ClusterReadError(
            `the kubeconfig's credential plugin ${exec.command} failed: ${detail || err.message}`,
          ),
        );
      } else resolve(out);
    });
  });
  let status: { token?: unknown; clientCertificateData?: unknown; clientKeyData?: unknown } | undefined;
  try {
    status = (JSON.parse(stdout) as { status?: typeof status }).status;
  } catch {
    throw new ClusterReadError(
      `the kubeconfig's credential plugin ${exec.command} did not print an ExecCredential`,
    );
  }
  const s = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  return { token: s(status?.token), cert: s(status?.clientCertificateData), key: s(status?.clientKeyData) };
}

async function credentials(target: ClusterTarget, o: ClusterReaderOptions): Promise<Credentials> {
  const u = target.user;
  if (u.authProvider !== undefined) {
    throw new ClusterReadError(
      `the kubeconfig's user of context "${target.context}" authenticates with the auth-provider ` +
        `"${u.authProvider}", which the program cannot use; use an exec credential plugin instead ` +
        `(kubectl has deprecated auth-providers)`,
    );
  }
  const exec = await execCredential(u, target.cluster, o);
  const token =
    exec.token ??
    u.token ??
    (u.tokenFile !== undefined ? fileText(o.readFile, u.tokenFile, "tokenFile").trim() : undefined);
  const cert =
    exec.cert ?? pemOf(o.readFile, u.clientCertificateData, u.clientCertificate, "client-certificate");
  const key = exec.key ?? pemOf(o.readFile, u.clientKeyData, u.clientKey, "client-key");
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  else if (u.username !== undefined) {
    headers.Authorization = `Basic ${Buffer.from(`${u.username}:${u.password ?? ""}`).toString("base64")}`;
  }
  return { headers, ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) };
}

/** The reader of the stack's pinned cluster, with that context's credentials (obtained once, on first use). */
export function clusterReader(target: ClusterTarget, o: ClusterReaderOptions): ClusterReader {
  const c = target.cluster;
  const describe = `the cluster of context "${target.context}" (${c.server})`;
  let creds: Promise<Credentials> | undefined;
  const ca = (): string | undefined =>
    pemOf(o.readFile, c.certificateAuthorityData, c.certificateAuthority, "certificate-authority");
  return {
    describe,
    async get(apiPath) {
      if (c.proxyUrl !== undefined) {
        throw new ClusterReadError(
          `the kubeconfig's cluster of context "${target.context}" has a proxy-url, which the program does not use`,
        );
      }
      creds ??= credentials(target, o);
      const { headers, cert, key } = await creds;
      // The server may carry a path (a proxy's prefix): the API path goes after it.
      const url = new URL(`${c.server.replace(/\/+$/, "")}${apiPath}`);
      const authority = ca();
      return new Promise((resolve, reject) => {
        const req = https.request(
          url,
          {
            method: "GET",
            headers,
            ...(authority !== undefined ? { ca: authority } : {}),
            ...(cert !== undefined ? { cert } : {}),
            ...(key !== undefined ? { key } : {}),
            ...(c.tlsServerName !== undefined ? { servername: c.tlsServerName } : {}),
            rejectUnauthorized: c.insecureSkipTlsVerify !== true,
            timeout: o.timeoutMs ?? 10_000,
          },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (body += d));
            res.on("end", () => {
              const status = res.statusCode ?? 0;
              if (status === 404) return resolve(undefined);
              let parsed: Record<string, unknown> | undefined;
              try {
                parsed = JSON.parse(body) as Record<string, unknown>;
              } catch {
                parsed = undefined;
              }
              if (status >= 200 && status < 300 && parsed) return resolve(parsed);
              const message =
                typeof parsed?.message === "string" ? parsed.message : body.slice(0, 200).trim();
              reject(new ClusterReadError(`HTTP ${status}${message ? `: ${message}` : ""}`, status));
            });
          },
        );
        req.on("timeout", () =>
          req.destroy(new Error(`no answer within ${(o.timeoutMs ?? 10_000) / 1000} s`)),
        );
        req.on("error", (e) => reject(e instanceof ClusterReadError ? e : new ClusterReadError(e.message)));
        req.end();
      });
    },
  };
}
