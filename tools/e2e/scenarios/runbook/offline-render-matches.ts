/**
 * Step offline-render-matches: the offline render (`npm run render`) against what the real run created, both
 * ways. Every rendered object is in the cluster, and every field the render writes is on the live object
 * with the same value, up to auto-name suffixes, secret values (the render has placeholders), the certificate
 * Vault issued (the render's placeholder CA and fixed expiry stand for the live ones), and what the API
 * server adds (defaults, status, managed fields); the render writes nothing the API server drops (an empty
 * `matchLabels`, a `readOnly: false`): those differ. And every live object of a kind the program creates, in
 * the pooler's namespace, is one the render has, but for what the e2e's fixtures and Kubernetes put there
 * ({@link othersObjects}): an object left over, or made by hand, fails it ({@link unrenderedLive}).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { REDACTED, RENDER_SET_LABEL } from "../../../../testing/manifests";
import { RENDER_DIRS } from "../../../render/gitops";
import { renderToDir } from "../../../render/spawn";
import { type KubeObject, list } from "../../clients/kubectl";
import { OFFLINE_ISSUED_AT, offlinePkiState } from "../../../../testing/pki";
import type { StackSettings } from "../../../../stacks/settings";
import { backendNamespace } from "../../fixtures";
import type { StackRun } from "./stack-run";
import { liveCertificate, pkiRoot } from "./tls";

type Manifest = Record<string, unknown> & {
  kind: string;
  apiVersion: string;
  metadata: Record<string, unknown>;
};

const KIND_RESOURCE: Record<string, string> = {
  StatefulSet: "statefulsets.apps",
  Deployment: "deployments.apps",
  ConfigMap: "configmaps",
  Secret: "secrets",
  Service: "services",
  PodDisruptionBudget: "poddisruptionbudgets.policy",
  NetworkPolicy: "networkpolicies.networking.k8s.io",
  PodMonitor: "podmonitors.monitoring.coreos.com",
  PrometheusRule: "prometheusrules.monitoring.coreos.com",
};

/**
 * The provider's auto-name: `<logical name>-<random 8>`. The render names ConfigMaps and Secrets
 * `<logical name>-<content hash>` and every other object by its logical name (stable across renders).
 */
const AUTO_NAMED = /^(.+)-[0-9a-z]{8}$/;

/** The live objects that are the provider's auto-named instance of a rendered name. */
function autoNamedMatches(rendered: string, objs: readonly KubeObject[]): KubeObject[] {
  const byLogical = (logical: string) =>
    objs.filter((o) => AUTO_NAMED.exec(o.metadata.name)?.[1] === logical);
  const stable = byLogical(rendered);
  if (stable.length > 0) return stable;
  const hashed = AUTO_NAMED.exec(rendered);
  return hashed ? byLogical(hashed[1]) : [];
}

export async function renderManifests(stack: string, outDir: string): Promise<Manifest[]> {
  await renderToDir(stack, outDir);
  const manifests = [RENDER_DIRS.objects, RENDER_DIRS.patches].flatMap((d) =>
    fs
      .readdirSync(path.join(outDir, d))
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => yaml.load(fs.readFileSync(path.join(outDir, d, f), "utf8")) as Manifest),
  );
  // A render of no object would make this step pass on nothing.
  if (manifests.length === 0) throw new Error(`the render in ${outDir} holds no manifest`);
  return manifests;
}

export async function offlineRenderMatches(r: StackRun): Promise<void> {
  const rendered = await withLiveCertificate(
    r,
    await renderManifests(r.stack, path.join(r.world.dir, "render", r.stack)),
  );
  const { pairs, names } = await livePairs(r, rendered);
  const problems: string[] = [];
  for (const [m, obj] of pairs) {
    const want = rename(m, names) as Manifest;
    if (m.kind === "Secret") {
      // Values are placeholders offline; the keys must match.
      const keys = Object.keys(want.stringData ?? {}).sort();
      assert.deepEqual(Object.keys(obj.data ?? {}).sort(), keys, `Secret ${obj.metadata.name} keys`);
      delete want.stringData;
    }
    const { name: _n, ...meta } = want.metadata;
    void _n;
    // The render-set label marks a render's own objects for a GitOps prune; a `pulumi up` has none.
    if (meta.labels && typeof meta.labels === "object") {
      const { [RENDER_SET_LABEL]: _set, ...labels } = meta.labels as Record<string, unknown>;
      void _set;
      meta.labels = labels;
    }
    subsetDiff({ ...want, metadata: meta }, obj, `${m.kind}/${obj.metadata.name}`, problems);
  }
  const others = othersObjects(r.s);
  const live = (await liveObjects(r)).filter((o) => !others.has(`${o.kind}/${o.metadata.name}`));
  problems.push(
    ...unrenderedLive(
      pairs.map(([, o]) => o),
      live,
    ),
  );
  assert.deepEqual(problems, [], `the offline render differs from the cluster:\n  ${problems.join("\n  ")}`);
  r.log(
    `  ${pairs.length} rendered objects match the cluster (${[...names.keys()].length} auto-named); ` +
      `the ${live.length} live objects of those kinds are all rendered ones (not counted: ${[...others].join(", ")})`,
  );
}

/** The kinds the program creates in the pooler's namespace (the backend's Deployment is only patched). */
const POOLER_KINDS = Object.keys(KIND_RESOURCE).filter((k) => k !== "Deployment");

/** Every live object of a kind the program creates, in the pooler's namespace. */
async function liveObjects(r: StackRun): Promise<KubeObject[]> {
  return list(r.k, POOLER_KINDS.map((k) => KIND_RESOURCE[k]).join(","), r.s.namespace);
}

/**
 * `Kind/name` of the objects in the pooler's namespace that are not the program's: the CA every namespace
 * gets (the controller-manager's root CA publisher), and the e2e's fixtures there (the backend's ConfigMap,
 * which the program only patches, and PostgreSQL's CA ConfigMap).
 */
export function othersObjects(s: StackSettings): Set<string> {
  const out = new Set(["ConfigMap/kube-root-ca.crt"]);
  if (backendNamespace(s) === s.namespace) out.add(`ConfigMap/${s.backend.configMapName}`);
  if (s.tls.serverCa?.source === "configmap") out.add(`ConfigMap/${s.tls.serverCa.name}`);
  return out;
}

/** The live objects no rendered manifest was paired with, each as a problem. */
export function unrenderedLive(paired: readonly KubeObject[], live: readonly KubeObject[]): string[] {
  const id = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  const rendered = new Set(paired.map(id));
  return live
    .filter((o) => !rendered.has(id(o)))
    .map((o) => `${o.kind}/${o.metadata.name}: in the cluster, not in the render`);
}

/**
 * The render with what only Vault knows put in: its placeholder issuing CA becomes OpenBao's root, and its
 * fixed expiry (seconds and ISO date, in the certificate's alerts) the live certificate's.
 */
async function withLiveCertificate(r: StackRun, rendered: Manifest[]): Promise<Manifest[]> {
  const c = r.s.tls.certificate;
  if (c?.source !== "vault-pki") return rendered;
  const offline = offlinePkiState({ ttl: c.ttlSeconds, commonName: "", backend: c.mount, name: c.role });
  const offlineExpiry = Number(offline.expiration);
  if (offlineExpiry !== OFFLINE_ISSUED_AT + c.ttlSeconds)
    throw new Error("testing/pki.ts changed its expiry");
  const liveExpiry = Date.parse((await liveCertificate(r)).leaf.validTo) / 1000;
  const root = await pkiRoot(r);
  const swaps: [string, string][] = [
    [String(offline.issuingCa), root],
    [String(offlineExpiry), String(liveExpiry)],
    [new Date(offlineExpiry * 1000).toISOString(), new Date(liveExpiry * 1000).toISOString()],
  ];
  const swap = (v: unknown): unknown => {
    if (typeof v === "string") return swaps.reduce((t, [from, to]) => t.split(from).join(to), v);
    if (Array.isArray(v)) return v.map(swap);
    if (v && typeof v === "object")
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swap(x)]));
    return v;
  };
  return rendered.map((m) => swap(m) as Manifest);
}

/**
 * Each rendered manifest with its live object (same kind and name, or the provider's auto-named instance
 * of it), and the render's auto-names -> the live names.
 */
async function livePairs(
  r: StackRun,
  rendered: readonly Manifest[],
): Promise<{ pairs: [Manifest, KubeObject][]; names: Map<string, string> }> {
  const live = new Map<string, KubeObject[]>();
  const liveOf = async (kind: string, ns: string) => {
    const key = `${kind}/${ns}`;
    if (!live.has(key)) live.set(key, await list(r.k, KIND_RESOURCE[kind], ns));
    return live.get(key) ?? [];
  };
  // Auto-named objects: the render's name -> the live name (same kind, same logical name).
  const names = new Map<string, string>();
  const pairs: [Manifest, KubeObject][] = [];
  for (const m of rendered) {
    assert.ok(KIND_RESOURCE[m.kind], `the offline-render-matches step knows how to find a ${m.kind}`);
    const name = String(m.metadata.name);
    const ns = typeof m.metadata.namespace === "string" ? m.metadata.namespace : r.s.namespace;
    const objs = await liveOf(m.kind, ns);
    let obj = objs.find((o) => o.metadata.name === name);
    if (!obj) {
      const candidates = autoNamedMatches(name, objs);
      assert.equal(
        candidates.length,
        1,
        `one live ${m.kind} auto-named from ${name}, got ${candidates.length}`,
      );
      obj = candidates[0];
      names.set(name, obj.metadata.name);
    }
    assert.ok(obj, `the render's ${m.kind} ${ns}/${name} exists in the cluster`);
    pairs.push([m, obj]);
  }
  return { pairs, names };
}

/** Replaces every string equal to a rendered auto-name by the live name. */
function rename(v: unknown, names: ReadonlyMap<string, string>): unknown {
  if (typeof v === "string") return names.get(v) ?? v;
  if (Array.isArray(v)) return v.map((x) => rename(x, names));
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rename(x, names)]));
  }
  return v;
}

/** Every field of `want` is in `got` with the same value (arrays: same length, element by element). */
function subsetDiff(want: unknown, got: unknown, at: string, out: string[]): void {
  if (want === REDACTED) return;
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) {
      out.push(`${at}: rendered ${JSON.stringify(want)}, live ${JSON.stringify(got)}`);
      return;
    }
    want.forEach((w, i) => subsetDiff(w, got[i], `${at}[${i}]`, out));
    return;
  }
  if (want && typeof want === "object") {
    if (!got || typeof got !== "object") {
      out.push(`${at}: rendered ${JSON.stringify(want)}, live ${JSON.stringify(got)}`);
      return;
    }
    for (const [k, w] of Object.entries(want))
      subsetDiff(w, (got as Record<string, unknown>)[k], `${at}.${k}`, out);
    return;
  }
  if (want !== got) out.push(`${at}: rendered ${JSON.stringify(want)}, live ${JSON.stringify(got)}`);
}
