/**
 * The kubeconfig as kubectl reads it (client-go's clientcmd loading rules), without a Kubernetes client:
 * `KUBECONFIG`'s files in order (missing ones skipped), else ~/.kube/config; the first file to name a
 * cluster, user or context wins it, and the first to set `current-context` sets it; a relative file path
 * in a file is relative to that file's folder. The program checks the shell's current context against the
 * stack's pinned one with it (./targets.ts), and reads the objects a stack references with the pinned
 * context's credentials (./kube-client.ts).
 */
import * as path from "path";
import * as yaml from "js-yaml";

/** A kubeconfig `cluster` entry, as far as the program connects with it. */
export interface KubeCluster {
  readonly server: string;
  readonly certificateAuthority?: string;
  readonly certificateAuthorityData?: string;
  readonly insecureSkipTlsVerify?: boolean;
  readonly tlsServerName?: string;
  readonly proxyUrl?: string;
}

/** A kubeconfig `users` entry's exec credential plugin. */
export interface KubeExec {
  readonly apiVersion?: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly env?: readonly { readonly name: string; readonly value: string }[];
  readonly provideClusterInfo?: boolean;
}

/** A kubeconfig `users` entry. */
export interface KubeUser {
  readonly clientCertificate?: string;
  readonly clientCertificateData?: string;
  readonly clientKey?: string;
  readonly clientKeyData?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly username?: string;
  readonly password?: string;
  readonly exec?: KubeExec;
  /** The legacy `auth-provider` (gcp, oidc, azure): its name, which this program does not run. */
  readonly authProvider?: string;
}

export interface KubeContext {
  readonly cluster: string;
  readonly user: string;
  readonly namespace?: string;
}

/** The merged kubeconfig. */
export interface Kubeconfig {
  /** Where it was read from, as a message names it: `KUBECONFIG=<list>` or the default file. */
  readonly source: string;
  /** The files that existed and were read, in order. */
  readonly files: readonly string[];
  readonly currentContext?: string;
  readonly contexts: ReadonlyMap<string, KubeContext>;
  readonly clusters: ReadonlyMap<string, KubeCluster>;
  readonly users: ReadonlyMap<string, KubeUser>;
}

/** What kubectl would read: `KUBECONFIG`'s list, else ~/.kube/config. */
export function kubeconfigFiles(env: Readonly<Record<string, string | undefined>>): {
  readonly source: string;
  readonly files: readonly string[];
} {
  const list = env.KUBECONFIG ?? "";
  if (list !== "") {
    const files = [...new Set(list.split(path.delimiter).filter((f) => f !== ""))];
    return { source: `KUBECONFIG=${list}`, files };
  }
  const file = path.join(env.HOME ?? "~", ".kube", "config");
  return { source: file, files: [file] };
}

type Doc = Record<string, unknown>;

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function named(doc: Doc, list: string, item: string): [string, Doc][] {
  const entries = Array.isArray(doc[list]) ? (doc[list] as unknown[]) : [];
  return entries.flatMap((e) => {
    if (typeof e !== "object" || e === null) return [];
    const name = str((e as Doc).name);
    const body = (e as Doc)[item];
    return name !== undefined ? [[name, typeof body === "object" && body !== null ? (body as Doc) : {}]] : [];
  });
}

/** `file` made absolute against the kubeconfig file's folder, as clientcmd resolves local paths. */
function resolve(dir: string, file: string | undefined): string | undefined {
  return file === undefined || path.isAbsolute(file) ? file : path.join(dir, file);
}

function cluster(c: Doc, dir: string): KubeCluster {
  const ca = resolve(dir, str(c["certificate-authority"]));
  const caData = str(c["certificate-authority-data"]);
  const name = str(c["tls-server-name"]);
  const proxy = str(c["proxy-url"]);
  return {
    server: str(c.server) ?? "",
    ...(ca ? { certificateAuthority: ca } : {}),
    ...(caData ? { certificateAuthorityData: caData } : {}),
    ...(c["insecure-skip-tls-verify"] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(name ? { tlsServerName: name } : {}),
    ...(proxy ? { proxyUrl: proxy } : {}),
  };
}

function user(u: Doc, dir: string): KubeUser {
  const out: { -readonly [K in keyof KubeUser]: KubeUser[K] } = {};
  const set = <K extends keyof KubeUser>(k: K, v: KubeUser[K]) => {
    if (v !== undefined) out[k] = v;
  };
  set("clientCertificate", resolve(dir, str(u["client-certificate"])));
  set("clientCertificateData", str(u["client-certificate-data"]));
  set("clientKey", resolve(dir, str(u["client-key"])));
  set("clientKeyData", str(u["client-key-data"]));
  set("token", str(u.token));
  set("tokenFile", resolve(dir, str(u.tokenFile)));
  set("username", str(u.username));
  set("password", str(u.password));
  const exec = u.exec as Doc | undefined;
  if (typeof exec === "object" && exec !== null && str(exec.command)) {
    const command = str(exec.command) ?? "";
    // Only a command with a folder in it is a local path; a bare name is looked up on PATH.
    const local = command.includes("/") ? (resolve(dir, command) ?? command) : command;
    set("exec", {
      ...(str(exec.apiVersion) ? { apiVersion: str(exec.apiVersion) } : {}),
      command: local,
      ...(Array.isArray(exec.args) ? { args: exec.args.map(String) } : {}),
      ...(Array.isArray(exec.env)
        ? {
            env: (exec.env as Doc[]).map((e) => ({ name: str(e.name) ?? "", value: str(e.value) ?? "" })),
          }
        : {}),
      ...(exec.provideClusterInfo === true ? { provideClusterInfo: true } : {}),
    });
  }
  const provider = u["auth-provider"] as Doc | undefined;
  if (typeof provider === "object" && provider !== null) set("authProvider", str(provider.name) ?? "unnamed");
  return out;
}

/**
 * Merges kubeconfig documents in kubectl's order: `texts` are the files that exist, each with its path.
 * Throws when one is not a kubeconfig (kubectl refuses it too), naming the file.
 */
export function mergeKubeconfigs(
  source: string,
  texts: readonly { readonly file: string; readonly text: string }[],
): Kubeconfig {
  let currentContext: string | undefined;
  const contexts = new Map<string, KubeContext>();
  const clusters = new Map<string, KubeCluster>();
  const users = new Map<string, KubeUser>();
  for (const { file, text } of texts) {
    let doc: unknown;
    try {
      doc = yaml.load(text);
    } catch (e) {
      throw new Error(`the kubeconfig ${file} is not YAML: ${(e as Error).message.split("\n")[0]}`);
    }
    if (doc === undefined || doc === null) continue;
    if (typeof doc !== "object" || Array.isArray(doc)) throw new Error(`the kubeconfig ${file} is not a map`);
    const d = doc as Doc;
    const dir = path.dirname(file);
    currentContext ??= str(d["current-context"]);
    for (const [name, c] of named(d, "clusters", "cluster"))
      if (!clusters.has(name)) clusters.set(name, cluster(c, dir));
    for (const [name, u] of named(d, "users", "user")) if (!users.has(name)) users.set(name, user(u, dir));
    for (const [name, c] of named(d, "contexts", "context")) {
      if (contexts.has(name)) continue;
      const ns = str(c.namespace);
      contexts.set(name, {
        cluster: str(c.cluster) ?? "",
        user: str(c.user) ?? "",
        ...(ns ? { namespace: ns } : {}),
      });
    }
  }
  return {
    source,
    files: texts.map((t) => t.file),
    ...(currentContext !== undefined ? { currentContext } : {}),
    contexts,
    clusters,
    users,
  };
}

/** Reads the kubeconfig kubectl would read; `readFile` answers undefined for a file that does not exist. */
export function readKubeconfig(
  env: Readonly<Record<string, string | undefined>>,
  readFile: (file: string) => string | undefined,
): Kubeconfig {
  const { source, files } = kubeconfigFiles(env);
  const texts = files.flatMap((file) => {
    const text = readFile(file);
    return text === undefined ? [] : [{ file, text }];
  });
  return mergeKubeconfigs(source, texts);
}

/** The cluster and user a context names, or why they cannot be used. */
export function resolveContext(
  k: Kubeconfig,
  context: string,
): { readonly cluster: KubeCluster; readonly user: KubeUser } | { readonly problem: string } {
  const c = k.contexts.get(context);
  if (!c) {
    const known = [...k.contexts.keys()].sort();
    return {
      problem:
        `the kubeconfig (${k.source}) has no context "${context}"` +
        (known.length > 0
          ? ` (its contexts: ${known.join(", ")})`
          : k.files.length === 0
            ? " (no file of it exists)"
            : ""),
    };
  }
  const cluster = k.clusters.get(c.cluster);
  if (!cluster || cluster.server === "") {
    return {
      problem: `the kubeconfig's context "${context}" names the cluster "${c.cluster}", which has no server`,
    };
  }
  return { cluster, user: k.users.get(c.user) ?? {} };
}
