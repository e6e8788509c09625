/**
 * The GitOps side of a render: what `kubectl apply` (or a GitOps tool) needs to apply one render over
 * another and leave exactly one of each object. Pure: it reads the manifests the render writes.
 */
import * as path from "path";

/** Folders of a render, below `rendered/<stack>/`. */
export const RENDER_DIRS = {
  /** The objects the render owns, each labelled with the render set: apply and prune these. */
  objects: "kubernetes",
  /** Server-side patches of objects another team owns (the backend's): apply, never prune. */
  patches: "patches",
} as const;

/** The ApplySet parent (a Secret kubectl creates in the namespace) that remembers what was applied. */
export const APPLYSET_PARENT = "pgbouncer-applyset";

/** A manifest as the render writes it (the fields this file reads). */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: object };
}

export interface GitOpsApply {
  /** The namespace of every owned object. */
  readonly namespace: string;
  /** The label on every owned object, and the selector that picks them. */
  readonly label: { readonly key: string; readonly value: string };
  readonly selector: string;
  /** `group/version/kind` (core as `core`) of every kind the render owns, for `--prune-allowlist`. */
  readonly pruneAllowlist: readonly string[];
  /** Field manager of every server-side apply: the one the Pulumi program's patches use. */
  readonly fieldManager: string;
  /** Whether the patches take `DB_HOST`/`DB_PORT` over from another field manager (`backend.forceConflicts`). */
  readonly forceConflicts: boolean;
  /**
   * How many objects of each type the render owns, keyed as `kubectl get -o name` prints the type
   * (`configmap`, `deployment.apps`, `podmonitor.monitoring.coreos.com`): what the namespace holds with the
   * render-set label after a pruning apply of this render.
   */
  readonly objectCounts: Readonly<Record<string, number>>;
}

/** `apps/v1` + `Deployment` → `{ group: "apps", version: "v1" }`; `v1` is the core group. */
function groupVersion(apiVersion: string): { group: string; version: string } {
  const [a, b] = apiVersion.split("/");
  return b === undefined ? { group: "", version: a } : { group: a, version: b };
}

/** The type as `kubectl get -o name` prints it: `deployment.apps`, `configmap`. */
export function kubectlType(m: Pick<Manifest, "apiVersion" | "kind">): string {
  const { group } = groupVersion(m.apiVersion);
  return group === "" ? m.kind.toLowerCase() : `${m.kind.toLowerCase()}.${group}`;
}

/** `--prune-allowlist` form: `core/v1/ConfigMap`, `apps/v1/Deployment`. */
export function allowlistEntry(m: Pick<Manifest, "apiVersion" | "kind">): string {
  const { group, version } = groupVersion(m.apiVersion);
  return `${group === "" ? "core" : group}/${version}/${m.kind}`;
}

/** What applying `owned` (the render's own objects) with a prune needs. */
export function gitOpsApply(
  owned: readonly Manifest[],
  o: { labelKey: string; labelValue: string; fieldManager: string; forceConflicts: boolean },
): GitOpsApply {
  const namespaces = [...new Set(owned.map((m) => m.metadata.namespace))];
  if (namespaces.length !== 1 || namespaces[0] === undefined) {
    throw new Error(`the render's objects must share one namespace, got ${JSON.stringify(namespaces)}`);
  }
  const counts: Record<string, number> = {};
  for (const m of owned) counts[kubectlType(m)] = (counts[kubectlType(m)] ?? 0) + 1;
  return {
    namespace: namespaces[0],
    label: { key: o.labelKey, value: o.labelValue },
    selector: `${o.labelKey}=${o.labelValue}`,
    pruneAllowlist: [...new Set(owned.map(allowlistEntry))].sort(),
    fieldManager: o.fieldManager,
    forceConflicts: o.forceConflicts,
    objectCounts: Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b))),
  };
}

/** A command to run without a shell: extra environment and argv. */
export interface Command {
  readonly env: Readonly<Record<string, string>>;
  readonly argv: readonly string[];
}

/**
 * The kubectl commands that apply the render in `renderDir`, as docs/gitops.md documents them:
 * - `applySet`: server-side apply, pruning what an earlier apply of the same ApplySet left behind, of any
 *   kind it ever applied (kubectl 1.27+, alpha: `KUBECTL_APPLYSET=true`);
 * - `labelPrune`: client-side apply pruning by the render-set label, over the kinds of this render
 *   (kubectl refuses `--prune -l` together with `--server-side`);
 * - `patches`: the server-side patches of the backend's objects, under the program's field manager;
 * - `count`: the owned objects now in the namespace, one `type/name` per line. `extraTypes` adds types to
 *   count that this render lacks (an earlier render's, which must now be gone).
 */
export function kubectlCommands(
  g: GitOpsApply,
  renderDir: string,
  extraTypes: readonly string[] = [],
): { applySet: Command; labelPrune: Command; patches: Command; count: Command } {
  const objects = path.join(renderDir, RENDER_DIRS.objects);
  const types = [...new Set([...Object.keys(g.objectCounts), ...extraTypes])].sort();
  return {
    applySet: {
      env: { KUBECTL_APPLYSET: "true" },
      argv: [
        "kubectl",
        "apply",
        "--server-side",
        `--field-manager=${g.fieldManager}`,
        "--prune",
        `--applyset=${APPLYSET_PARENT}`,
        "-n",
        g.namespace,
        "-f",
        objects,
      ],
    },
    labelPrune: {
      env: {},
      argv: [
        "kubectl",
        "apply",
        "--prune",
        "-l",
        g.selector,
        ...g.pruneAllowlist.map((a) => `--prune-allowlist=${a}`),
        "-n",
        g.namespace,
        "-f",
        objects,
      ],
    },
    patches: {
      env: {},
      argv: [
        "kubectl",
        "apply",
        "--server-side",
        `--field-manager=${g.fieldManager}`,
        ...(g.forceConflicts ? ["--force-conflicts"] : []),
        "-f",
        path.join(renderDir, RENDER_DIRS.patches),
      ],
    },
    count: {
      env: {},
      argv: ["kubectl", "get", types.join(","), "-n", g.namespace, "-l", g.selector, "-o", "name"],
    },
  };
}

/** `kubectl get -o name` output counted per type: `{ "configmap": 1, "deployment.apps": 1 }`. */
export function countNames(output: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of output.split("\n").map((l) => l.trim())) {
    if (line === "") continue;
    const type = line.slice(0, line.indexOf("/"));
    counts[type] = (counts[type] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}
