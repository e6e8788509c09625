/**
 * kubectl as a function: every call runs the real `kubectl` against the world's kubeconfig and returns its
 * stdout, or parsed JSON; `waitFor` polls the cluster until a condition holds, bounded in time.
 */
import { spawn } from "node:child_process";
import { type RunOptions, type RunResult, run } from "../../common";

export type KubectlOptions = Pick<RunOptions, "input" | "timeoutMs">;

export type KubectlResult = RunResult;

/** Runs kubectl; resolves with its exit code and output (never rejects on a non-zero exit). */
export type KubectlRaw = (args: readonly string[], opts?: KubectlOptions) => Promise<KubectlResult>;

/** Runs kubectl and returns stdout; rejects with kubectl's stderr when it fails. */
export type Kubectl = (args: readonly string[], opts?: KubectlOptions) => Promise<string>;

/** kubectl `file` against `kubeconfig`, with `env` added to this process's environment. */
export function kubectlRaw(file: string, kubeconfig: string, env: NodeJS.ProcessEnv = {}): KubectlRaw {
  return (args, opts = {}) =>
    run(file, ["--kubeconfig", kubeconfig, ...args], { env, input: opts.input, timeoutMs: opts.timeoutMs });
}

export function kubectlOk(raw: KubectlRaw): Kubectl {
  return async (args, opts) => {
    const r = await raw(args, opts);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  };
}

/** A Kubernetes object as kubectl prints it with `-o json`. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly uid: string;
    readonly resourceVersion: string;
    readonly generation?: number;
    readonly deletionTimestamp?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
    readonly ownerReferences?: readonly { kind: string; name: string; uid: string }[];
    readonly managedFields?: readonly { manager: string; operation: string; fieldsV1?: unknown }[];
  };
  readonly [key: string]: unknown;
}

/** `kubectl get <args> -o json`, parsed. */
export async function getJson<T = KubeObject>(kubectl: Kubectl, args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectl(["get", ...args, "-o", "json"])) as T;
}

/** The items of `kubectl get <kind> -n <ns> [-l selector]`. */
export async function list(
  kubectl: Kubectl,
  kind: string,
  namespace: string,
  selector?: string,
): Promise<KubeObject[]> {
  const args = [kind, "-n", namespace, ...(selector ? ["-l", selector] : [])];
  return (await getJson<{ items: KubeObject[] }>(kubectl, args)).items;
}

/** Whether `kubectl get` finds the object. */
export async function exists(raw: KubectlRaw, args: readonly string[]): Promise<boolean> {
  const r = await raw(["get", ...args, "-o", "name"]);
  if (r.code === 0) return r.stdout.trim() !== "";
  if (/NotFound|not found/.test(r.stderr)) return false;
  throw new Error(`kubectl get ${args.join(" ")}: ${r.stderr.trim()}`);
}

/**
 * Polls `check` every `everyMs` until it returns a value other than undefined; fails after `timeoutMs`
 * with `what` and the last reason `check` gave (its thrown error).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 120_000,
  everyMs = 1_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${last}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Objects as one `kubectl apply -f -` input (a v1 List: kubectl reads a JSON stream only as one document). */
export function asList(objects: readonly unknown[]): string {
  return JSON.stringify({ apiVersion: "v1", kind: "List", items: objects });
}

/** A running `kubectl get --watch --output-watch-events`: its events, once stopped. */
export interface WatchEvents {
  /** Ends the watch; resolves with each event's type and object name (`DELETED pgbouncer-tls`), in order. */
  stop(): Promise<string[]>;
}

/**
 * Watches one object (`kind`, `name` in `namespace`) with the real kubectl, from before the call returns:
 * it resolves once the watch has listed the object as it is (its first event), so nothing that happens
 * afterwards is missed.
 */
export async function watchObject(
  world: { readonly kubeconfig: string; readonly env: Readonly<Record<string, string>> },
  kind: string,
  namespace: string,
  name: string,
): Promise<WatchEvents> {
  const child = spawn(
    "kubectl",
    [
      "--kubeconfig",
      world.kubeconfig,
      "get",
      kind,
      "-n",
      namespace,
      "--field-selector",
      `metadata.name=${name}`,
      "--watch",
      "--output-watch-events",
      "--no-headers",
      "-o",
      "custom-columns=EVENT:.type,NAME:.object.metadata.name",
    ],
    { env: { ...process.env, PATH: world.env.PATH }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const events = () =>
    out
      .split("\n")
      .map((l) => l.trim().split(/\s+/).join(" "))
      .filter((l) => l !== "");
  await waitFor(
    `kubectl's watch of ${kind} ${namespace}/${name}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`kubectl --watch exited ${child.exitCode}: ${err}`);
      return Promise.resolve(events().length > 0 ? true : undefined);
    },
    30_000,
    200,
  );
  return {
    stop: async () => {
      // The watch's last events may still be on their way: a moment for them, then the end.
      await new Promise((r) => setTimeout(r, 1_000));
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
      return events();
    },
  };
}
