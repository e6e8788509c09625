/**
 * The GitOps part's shared run: the three prod renders (A; B: another pool size and processesPerPod; C: B
 * in monitoring mode plain), the README's kubectl commands for each (tools/render/gitops.ts builds them),
 * and the checks every sequence uses: what the render set holds in the cluster, per kind and by name, and a
 * clean slate between sequences.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { type StackSettings, parseSettings } from "../../../../stacks/settings";
import { rawStackConfig, stackFileConfig } from "../../../../stacks/stack-file";
import { withSettings } from "../../../render/main";
import {
  type Command,
  APPLYSET_PARENT,
  countNames,
  kubectlCommands,
  kubectlType,
} from "../../../render/gitops";
import { type KubeObject, type Kubectl, getJson, kubectlRaw } from "../../clients/kubectl";
import type { PartContext } from "../../context";
import { type Render, render } from "../renders";

export const STACK = "prod";
/**
 * Every render goes to a namespace of its own, so that the part runs beside the prod scenario (one owner
 * per namespace: a render set and a Pulumi stack never share one).
 */
export const NAMESPACE_SETTING = { namespace: "clipper-gitops" };
export const A_SETTINGS = NAMESPACE_SETTING;
export const B_SETTINGS = {
  ...NAMESPACE_SETTING,
  "pgbouncer.processesPerPod": "2",
  "pool.maxDbConnections": "25",
  "pool.defaultPoolSize": "25",
};
export const C_SETTINGS = { ...B_SETTINGS, "monitoring.mode": "plain" };

/** The prod stack's settings as the renders have them (in their own namespace). */
export function gitopsSettings(): StackSettings {
  return parseSettings(rawStackConfig(withSettings(stackFileConfig(STACK), A_SETTINGS)));
}

/** The three renders, and the README's commands for each. */
export interface Renders {
  readonly A: Render;
  readonly B: Render;
  readonly C: Render;
  /** type -> names in A and in B. */
  readonly nA: Map<string, string[]>;
  readonly nB: Map<string, string[]>;
  /** Every type of the three renders (each command's prune list). */
  readonly allTypes: readonly string[];
}

export interface GitOpsRun extends PartContext, Renders {
  readonly s: StackSettings;
  readonly ns: string;
  readonly k: Kubectl;
  /** The README's commands for a render. */
  cmds(r: Render): ReturnType<typeof kubectlCommands>;
  /** Runs a command as the README writes it (its environment included); it must succeed. */
  run(c: Command, what: string, quiet?: boolean): Promise<string>;
  /** The render set's objects in the cluster, counted per type. */
  counted(): Promise<Record<string, number>>;
  /** The names of `type` in the render set, sorted. */
  names(type: string): Promise<string[]>;
  /** Exactly the render's objects are in the cluster, and the StatefulSet's mounts exist. */
  expectExactly(r: Render, what: string): Promise<void>;
  /** Deletes the render set's objects and the ApplySet parent. */
  clean(): Promise<void>;
}

/** type -> the names of that type in the render. */
export function namesOf(r: Render): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const o of r.objects)
    m.set(kubectlType(o), [...(m.get(kubectlType(o)) ?? []), o.metadata.name].sort());
  return m;
}

/** The three renders, side by side under `dir`. */
export async function renderThree(dir: string): Promise<Renders> {
  const [A, B, C] = await Promise.all([
    render(STACK, path.join(dir, "A"), A_SETTINGS),
    render(STACK, path.join(dir, "B"), B_SETTINGS),
    render(STACK, path.join(dir, "C"), C_SETTINGS),
  ]);
  const allTypes = [...new Set([A, B, C].flatMap((r) => Object.keys(r.index.gitops.objectCounts)))];
  return { A, B, C, nA: namesOf(A), nB: namesOf(B), allTypes };
}

export function openGitOpsRun(ctx: PartContext, s: StackSettings, renders: Renders): GitOpsRun {
  const ns = s.namespace;
  const k = ctx.world.kubectl;
  const { A } = renders;
  const cmds = (r: Render) => kubectlCommands(r.index.gitops, r.dir, renders.allTypes);
  const run = async (c: Command, what: string, quiet = false) => {
    const raw = kubectlRaw("kubectl", ctx.world.kubeconfig, { PATH: ctx.world.env.PATH, ...c.env });
    if (!quiet)
      ctx.log(
        `$ ${Object.entries(c.env)
          .map(([a, b]) => `${a}=${b} `)
          .join("")}${c.argv.join(" ")}`,
      );
    const r = await raw(c.argv.slice(1), { timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${what}: ${c.argv.join(" ")}\n${r.stderr}`);
    return r.stdout;
  };
  const counted = async (): Promise<Record<string, number>> =>
    countNames(await run(cmds(A).count, "count", true));
  const names = async (type: string): Promise<string[]> =>
    (await run(cmds(A).count, "count", true))
      .split("\n")
      .filter((l) => l.startsWith(`${type}/`))
      .map((l) => l.slice(type.length + 1))
      .sort();
  const g: GitOpsRun = {
    ...ctx,
    ...renders,
    s,
    ns,
    k,
    cmds,
    run,
    counted,
    names,
    expectExactly: (r, what) => expectExactly(g, r, what),
    clean: async () => {
      await k([
        "delete",
        renders.allTypes.join(","),
        "-n",
        ns,
        "-l",
        A.index.gitops.selector,
        "--wait=false",
      ]);
      await k(["delete", "secret", APPLYSET_PARENT, "-n", ns, "--ignore-not-found"]);
      await k([
        "delete",
        "pods",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/name=pgbouncer",
        "--grace-period=0",
        "--force",
      ]);
      assert.deepEqual(await counted(), {}, "clean: no object of the render set left");
    },
  };
  return g;
}

async function expectExactly(g: GitOpsRun, r: Render, what: string): Promise<void> {
  const got = await g.counted();
  g.log(`  ${what}: ${JSON.stringify(got)}`);
  assert.deepEqual(got, r.index.gitops.objectCounts, `${what}: one of each object of the render`);
  for (const [type, want] of namesOf(r))
    assert.deepEqual(await g.names(type), want, `${what}: ${type} names`);
  // The StatefulSet mounts what is there: the prune never removed the ConfigMap or Secret it references.
  const dep = await getJson<
    KubeObject & {
      spec: { template: { spec: { volumes?: Record<string, { name?: string; secretName?: string }>[] } } };
    }
  >(g.k, ["statefulset", "pgbouncer", "-n", g.ns]);
  for (const v of dep.spec.template.spec.volumes ?? []) {
    if (v.configMap)
      assert.ok(
        (await g.names("configmap")).includes(String(v.configMap.name)),
        `${what}: mounted ConfigMap exists`,
      );
    if (v.secret)
      assert.ok(
        (await g.names("secret")).includes(String(v.secret.secretName)),
        `${what}: mounted Secret exists`,
      );
  }
}
