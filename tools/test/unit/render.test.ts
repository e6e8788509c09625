/**
 * The offline render as a GitOps source: a second render with other settings names every object the same
 * way (only the exporters' Secret, which the pods read at start, changes name, with its content), labels what
 * it owns for a prune, and writes what a pruning `kubectl apply` needs. The real API server run is the e2e's (see
 * docs/e2e.md); here an apply-with-prune is modelled on the written manifests.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import { FIELD_MANAGER } from "../../../components/backend-route";
import { runError } from "../../../stacks/run-error";
import { parseSettings } from "../../../stacks/settings";
import { PROJECT_DIR, rawStackConfig, stackFileConfig } from "../../../stacks/stack-file";
import {
  APPLYSET_PARENT,
  type Manifest,
  RENDER_DIRS,
  countNames,
  kubectlCommands,
  kubectlType,
} from "../../render/gitops";
import { RENDER_SET_LABEL } from "../../../testing/manifests";
import { HASHED_TYPES, offlineName } from "../../../testing/resource";
import { type RenderIndex, renderStack, withSetting } from "../../render/main";
import { renderProcess } from "../../render/spawn";

interface Render {
  dir: string;
  index: RenderIndex;
  owned: Manifest[];
  patches: Manifest[];
}

function readDir(dir: string): Manifest[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => yaml.load(fs.readFileSync(path.join(dir, f), "utf8")) as Manifest);
}

async function render(root: string, name: string, sets: [string, string][]): Promise<Render> {
  let config: Record<string, string> = {};
  for (const [k, v] of sets) config = withSetting({ ...stackFileConfig("prod"), ...config }, k, v);
  const dir = path.join(root, name);
  await renderStack("prod", dir, config);
  return {
    dir,
    index: JSON.parse(fs.readFileSync(path.join(dir, "stack.json"), "utf8")) as RenderIndex,
    owned: readDir(path.join(dir, RENDER_DIRS.objects)),
    patches: readDir(path.join(dir, RENDER_DIRS.patches)),
  };
}

const key = (m: Manifest) => `${kubectlType(m)}/${m.metadata.name}`;
const labels = (m: Manifest) => (m.metadata.labels ?? {}) as Record<string, string>;

/**
 * An apply with a label-based prune, as kubectl does it: every object is created or updated by name; then
 * objects of the allowlisted kinds that carry the selector's label and were not in this apply are deleted.
 */
function applyWithPrune(live: Map<string, Manifest>, r: Render): void {
  const g = r.index.gitops;
  const applied = new Set(r.owned.map(key));
  for (const m of r.owned) live.set(key(m), m);
  const kinds = new Set(g.pruneAllowlist.map((a) => a.split("/")[2]));
  for (const [k, m] of live) {
    if (kinds.has(m.kind) && labels(m)[g.label.key] === g.label.value && !applied.has(k)) live.delete(k);
  }
}

/** An object of the render by kind and name. */
function named(r: Render, kind: string, name: string): Manifest {
  const found = r.owned.filter((m) => m.kind === kind && m.metadata.name === name);
  assert.strictEqual(found.length, 1, `${kind} ${name}`);
  return found[0];
}

/** The exporters' Secret: the one object whose name carries its content's hash. */
function exporterSecret(r: Render): Manifest {
  const found = r.owned.filter(
    (m) => m.kind === "Secret" && m.metadata.name.startsWith("pgbouncer-exporter-"),
  );
  assert.strictEqual(found.length, 1, "Secret pgbouncer-exporter-*");
  return found[0];
}

/** The StatefulSet's pod template. */
function template(r: Render): {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: { env?: { valueFrom?: { secretKeyRef?: { name: string } } }[] }[];
    volumes: { configMap?: { name: string }; secret?: { secretName: string } }[];
  };
} {
  return (
    named(r, "StatefulSet", "pgbouncer") as unknown as { spec: { template: ReturnType<typeof template> } }
  ).spec.template;
}

function perType(live: Map<string, Manifest>): Record<string, number> {
  return countNames([...live.keys()].join("\n"));
}

describe("the offline render as a GitOps source", function () {
  this.timeout(120000);
  let root: string;
  let a: Render; // prod as it is
  let b: Render; // two processes per pod, half the cap each
  let c: Render; // b with plain Prometheus monitoring
  let d: Render; // a with a reloadable change: a pool size and a timeout
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-render-"));
    a = await render(root, "a", []);
    const two: [string, string][] = [
      ["pgbouncer.processesPerPod", "2"],
      ["pool.maxDbConnections", "25"],
      ["pool.defaultPoolSize", "25"],
    ];
    b = await render(root, "b", two);
    c = await render(root, "c", [...two, ["monitoring.mode", "plain"]]);
    d = await render(root, "d", [
      ["pool.defaultPoolSize", "40"],
      ["pool.queryWaitTimeoutSeconds", "60"],
    ]);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("the second render really differs (the ini and the pod), so the comparison means something", () => {
    const ini = (r: Render) =>
      (named(r, "ConfigMap", "pgbouncer-config") as unknown as { data: object }).data;
    assert.notDeepStrictEqual(ini(a), ini(b));
    assert.deepStrictEqual(Object.keys(ini(b)), ["pgbouncer.ini"]);
    assert.notDeepStrictEqual(template(a), template(b));
  });

  it("names every object but the exporters' Secret the same in both renders", () => {
    const stable = (r: Render) =>
      r.owned
        .filter((m) => !m.metadata.name.startsWith("pgbouncer-exporter-"))
        .map(key)
        .sort();
    assert.deepStrictEqual(stable(b), stable(a));
    assert.deepStrictEqual(stable(a), [
      "configmap/pgbouncer-ca",
      "configmap/pgbouncer-config",
      "networkpolicy.networking.k8s.io/pgbouncer-netpol",
      "poddisruptionbudget.policy/pgbouncer-pdb",
      "podmonitor.monitoring.coreos.com/pgbouncer-monitoring-podmonitor",
      "prometheusrule.monitoring.coreos.com/pgbouncer-monitoring-certificate-rules",
      "prometheusrule.monitoring.coreos.com/pgbouncer-monitoring-rules",
      "secret/pgbouncer-auth",
      "secret/pgbouncer-tls",
      "service/pgbouncer",
      "service/pgbouncer-canary",
      "service/pgbouncer-peers",
      "statefulset.apps/pgbouncer",
    ]);
  });

  it("gives the exporters' Secret a content-hash suffix, new when its content changes", () => {
    assert.match(exporterSecret(a).metadata.name, /^pgbouncer-exporter-[0-9a-f]{8}$/);
    // two processes need a second exporter connection string: the Secret's content changed
    assert.notStrictEqual(exporterSecret(a).metadata.name, exporterSecret(b).metadata.name);
    assert.deepStrictEqual(HASHED_TYPES, ["kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret"]);
    assert.strictEqual(offlineName("kubernetes:policy/v1:PodDisruptionBudget", "x-pdb", { a: 1 }), "x-pdb");
    assert.strictEqual(
      offlineName("kubernetes:core/v1:ConfigMap", "x", { a: 1 }),
      offlineName("kubernetes:core/v1:ConfigMap", "x", { a: 1 }),
    );
    assert.notStrictEqual(
      offlineName("kubernetes:core/v1:ConfigMap", "x", { a: 1 }),
      offlineName("kubernetes:core/v1:ConfigMap", "x", { a: 2 }),
    );
  });

  it("the StatefulSet mounts pgbouncer-config and pgbouncer-auth by name, and its render's exporters' Secret", () => {
    for (const r of [a, b]) {
      const t = template(r);
      assert.ok(t.spec.volumes.some((v) => v.configMap?.name === "pgbouncer-config"));
      assert.ok(t.spec.volumes.some((v) => v.secret?.secretName === "pgbouncer-auth"));
      const refs = t.spec.containers.flatMap((c) =>
        (c.env ?? []).map((e) => e.valueFrom?.secretKeyRef?.name),
      );
      assert.ok(refs.includes(exporterSecret(r).metadata.name), exporterSecret(r).metadata.name);
    }
  });

  it("a reloadable change (a pool size, a timeout) changes the ConfigMap's data only: same names, same pod template", () => {
    const ini = (r: Render) =>
      (named(r, "ConfigMap", "pgbouncer-config") as unknown as { data: object }).data;
    assert.notDeepStrictEqual(ini(d), ini(a));
    assert.deepStrictEqual(d.owned.map(key).sort(), a.owned.map(key).sort());
    assert.deepStrictEqual(template(d), template(a));
  });

  it("labels every owned object with the render set, and neither the patches nor the pod template", () => {
    for (const r of [a, b, c]) {
      assert.ok(r.owned.length >= 7, `${r.owned.length} objects`);
      for (const m of r.owned)
        assert.strictEqual(labels(m)[RENDER_SET_LABEL], "clipper-pgbouncer.prod", key(m));
      assert.deepStrictEqual(r.patches.map((m) => `${m.kind}/${m.metadata.name}`).sort(), [
        "ConfigMap/backend-config",
        "Deployment/clipper-backend",
      ]);
      for (const m of r.patches) assert.strictEqual(labels(m)[RENDER_SET_LABEL], undefined, key(m));
      assert.strictEqual(template(r).metadata.labels[RENDER_SET_LABEL], undefined);
    }
  });

  it("applying render A, then B with a label prune, leaves exactly one of each object (B's)", () => {
    const live = new Map<string, Manifest>();
    applyWithPrune(live, a);
    assert.deepStrictEqual(perType(live), a.index.gitops.objectCounts);
    applyWithPrune(live, b);
    assert.deepStrictEqual(perType(live), b.index.gitops.objectCounts);
    assert.deepStrictEqual([...live.keys()].sort(), b.owned.map(key).sort());
  });

  it("without the prune, the old exporters' Secret stays behind (and only it)", () => {
    const live = new Map<string, Manifest>();
    for (const r of [a, b]) for (const m of r.owned) live.set(key(m), m);
    const current = new Set(b.owned.map(key));
    assert.deepStrictEqual(
      [...live.keys()].filter((k) => !current.has(k)),
      [key(exporterSecret(a))],
    );
  });

  it("switching to plain monitoring: this render's allowlist does not reach the PodMonitor, which is why docs/gitops.md says to add it", () => {
    const live = new Map<string, Manifest>();
    applyWithPrune(live, b);
    applyWithPrune(live, c);
    assert.ok(!c.index.gitops.pruneAllowlist.some((k) => k.startsWith("monitoring.coreos.com/")));
    assert.ok(live.has("podmonitor.monitoring.coreos.com/pgbouncer-monitoring-podmonitor"));
    const withOperatorKinds = {
      ...c,
      index: {
        ...c.index,
        gitops: {
          ...c.index.gitops,
          pruneAllowlist: [...c.index.gitops.pruneAllowlist, ...b.index.gitops.pruneAllowlist],
        },
      },
    };
    applyWithPrune(live, withOperatorKinds);
    assert.deepStrictEqual(perType(live), c.index.gitops.objectCounts);
    // plain mode: the rules travel in a ConfigMap of their own, beside the ini's and the pooler's CA's
    assert.strictEqual(c.index.gitops.objectCounts.configmap, 3);
  });

  it("stack.json lists every file it wrote, and the allowlist and counts cover every owned object", () => {
    for (const r of [a, b, c]) {
      for (const res of r.index.resources) {
        if (res.file) assert.ok(fs.existsSync(path.join(r.dir, res.file)), res.file);
      }
      const g = r.index.gitops;
      assert.strictEqual(g.namespace, "clipper");
      assert.strictEqual(g.selector, `${RENDER_SET_LABEL}=clipper-pgbouncer.prod`);
      assert.strictEqual(g.fieldManager, FIELD_MANAGER);
      assert.strictEqual(g.forceConflicts, true);
      for (const m of r.owned) {
        const { group, version } = /^(?:(?<group>[^/]+)\/)?(?<version>[^/]+)$/.exec(m.apiVersion)!.groups!;
        assert.ok(g.pruneAllowlist.includes(`${group ?? "core"}/${version}/${m.kind}`), m.kind);
      }
      assert.strictEqual(
        Object.values(g.objectCounts).reduce((x, y) => x + y, 0),
        r.owned.length,
      );
      // the Kubernetes folders hold manifests only: a directory apply or a GitOps tool reads nothing else
      for (const d of Object.values(RENDER_DIRS)) {
        for (const f of fs.readdirSync(path.join(r.dir, d))) assert.match(f, /\.yaml$/);
      }
    }
  });

  it("gives the kubectl commands docs/gitops.md documents", () => {
    const cmds = kubectlCommands(a.index.gitops, "rendered/prod");
    assert.deepStrictEqual(cmds.applySet, {
      env: { KUBECTL_APPLYSET: "true" },
      argv: [
        "kubectl",
        "apply",
        "--server-side",
        "--field-manager=clipper-pgbouncer",
        "--prune",
        `--applyset=${APPLYSET_PARENT}`,
        "-n",
        "clipper",
        "-f",
        "rendered/prod/kubernetes",
      ],
    });
    assert.deepStrictEqual(cmds.patches.argv, [
      "kubectl",
      "apply",
      "--server-side",
      "--field-manager=clipper-pgbouncer",
      "--force-conflicts",
      "-f",
      "rendered/prod/patches",
    ]);
    const prune = cmds.labelPrune.argv;
    assert.deepStrictEqual(prune.slice(0, 5), [
      "kubectl",
      "apply",
      "--prune",
      "-l",
      "clipper.io/render-set=clipper-pgbouncer.prod",
    ]);
    assert.ok(!prune.includes("--server-side"), "kubectl 1.35 refuses --prune -l with --server-side");
    assert.strictEqual(prune.filter((x) => x.startsWith("--prune-allowlist=")).length, 8);
    const count = kubectlCommands(c.index.gitops, "x", ["podmonitor.monitoring.coreos.com"]).count.argv;
    assert.ok(count[2].split(",").includes("podmonitor.monitoring.coreos.com"));
    assert.deepStrictEqual(countNames("configmap/a\nconfigmap/b\n\ndeployment.apps/pgbouncer\n"), {
      configmap: 2,
      "deployment.apps": 1,
    });
  });
});

describe("docs/gitops.md", () => {
  const section = fs.readFileSync(path.join(PROJECT_DIR, "docs", "gitops.md"), "utf8");
  const flat = section.replace(/\\\n\s*/g, "").replace(/\s+/g, " ");

  it("runs the commands kubectlCommands gives for the prod render", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-render-readme-"));
    try {
      await renderStack("prod", dir);
      const index = JSON.parse(fs.readFileSync(path.join(dir, "stack.json"), "utf8")) as RenderIndex;
      const cmds = kubectlCommands(index.gitops, "rendered/prod");
      const line = (c: { env: Record<string, string>; argv: readonly string[] }) =>
        [...Object.entries(c.env).map(([k, v]) => `${k}=${v}`), ...c.argv].join(" ");
      for (const c of [cmds.applySet, cmds.patches]) assert.ok(flat.includes(line(c)), line(c));
      const prune = cmds.labelPrune.argv;
      assert.ok(flat.includes(prune.slice(0, 5).join(" ")), prune.slice(0, 5).join(" "));
      assert.ok(flat.includes(prune.slice(-4).join(" ")));
      assert.ok(
        section.includes(`\`${RENDER_SET_LABEL}: ${index.gitops.label.value.replace("prod", "<stack>")}\``),
      );
      // every name it quotes is one the render gives
      const names = index.resources.filter((r) => r.file?.startsWith(RENDER_DIRS.objects)).length;
      assert.ok(names >= 8);
      for (const m of readDir(path.join(dir, RENDER_DIRS.objects))) {
        const quoted = m.metadata.name.replace(/-[0-9a-f]{8}$/, "-<hash>");
        assert.ok(section.includes(`\`${quoted}\``), quoted);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("withSetting", () => {
  const config = { "clipper-pgbouncer:pgbouncer": '{"replicas":2,"resources":{"cpuLimit":"500m"}}' };
  it("sets one field of a section, keeping the others, JSON values typed", () => {
    const out = withSetting(config, "pgbouncer.resources.cpuRequest", "100m");
    assert.deepStrictEqual(JSON.parse(out["clipper-pgbouncer:pgbouncer"]), {
      replicas: 2,
      resources: { cpuLimit: "500m", cpuRequest: "100m" },
    });
    const two = withSetting(config, "pgbouncer.processesPerPod", "2");
    assert.strictEqual(JSON.parse(two["clipper-pgbouncer:pgbouncer"]).processesPerPod, 2);
  });
  it("sets a plain key, and starts a section that the stack file lacks", () => {
    assert.strictEqual(withSetting(config, "namespace", "other")["clipper-pgbouncer:namespace"], "other");
    assert.deepStrictEqual(
      JSON.parse(withSetting(config, "exporter.port", "9200")["clipper-pgbouncer:exporter"]),
      {
        port: 9200,
      },
    );
  });
});

describe("the offline render's report of a mistake", function () {
  this.timeout(120_000);

  it("prints the message pulumi preview prints: the program's RunError, one line of error:, no stack", async () => {
    const tooMany = "999";
    const config = withSetting(stackFileConfig("prod"), "pool.maxDbConnections", tooMany);
    let expected = "";
    try {
      parseSettings(rawStackConfig(config));
    } catch (e) {
      expected = runError(e).message;
    }
    assert.match(expected, /pool\.maxDbConnections/, "the settings refuse the budget");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-render-bad-"));
    try {
      const r = await renderProcess("prod", dir, { "pool.maxDbConnections": tooMany });
      assert.strictEqual(r.code, 1);
      assert.strictEqual(r.stderr.trim(), `error: ${expected}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
