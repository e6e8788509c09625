/**
 * The offline render as a GitOps source: a second render with other settings names every object the same
 * way (only ConfigMaps and Secrets change name, with their content), labels what it owns for a prune, and
 * writes what a pruning `kubectl apply` needs. The real API server run is the e2e's (see
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

/**
 * The pooler's own hashed ConfigMap (the ini) or Secret (the auth file); the TLS objects beside them
 * (`pgbouncer-ca`, `pgbouncer-tls`) keep fixed names, so that a renewal never rolls the pods.
 */
function pooler(r: Render, kind: string): Manifest {
  const prefix = kind === "ConfigMap" ? "pgbouncer-config-" : "pgbouncer-auth-";
  const found = r.owned.filter((m) => m.kind === kind && m.metadata.name.startsWith(prefix));
  assert.strictEqual(found.length, 1, `${kind} ${prefix}*`);
  return found[0];
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
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("the second render really differs (the ini and the pod), so the comparison means something", () => {
    const cm = (r: Render) => pooler(r, "ConfigMap") as unknown as { data: object };
    assert.notDeepStrictEqual(cm(a).data, cm(b).data);
    assert.deepStrictEqual(Object.keys(cm(b).data).sort(), ["pgbouncer-1.ini", "pgbouncer-2.ini"]);
  });

  it("names every object but a ConfigMap or Secret the same in both renders", () => {
    const stable = (r: Render) =>
      r.owned
        .filter((m) => !["ConfigMap", "Secret"].includes(m.kind))
        .map(key)
        .sort();
    assert.deepStrictEqual(stable(b), stable(a));
    assert.deepStrictEqual(stable(a), [
      "deployment.apps/pgbouncer",
      "networkpolicy.networking.k8s.io/pgbouncer-netpol",
      "poddisruptionbudget.policy/pgbouncer-pdb",
      "podmonitor.monitoring.coreos.com/pgbouncer-monitoring-podmonitor",
      "prometheusrule.monitoring.coreos.com/pgbouncer-monitoring-certificate-rules",
      "prometheusrule.monitoring.coreos.com/pgbouncer-monitoring-rules",
      "service/pgbouncer",
    ]);
  });

  it("gives a ConfigMap and a Secret a content-hash suffix, new when the content changes", () => {
    const named = (r: Render, kind: string) => [pooler(r, kind).metadata.name];
    assert.match(named(a, "ConfigMap")[0], /^pgbouncer-config-[0-9a-f]{8}$/);
    assert.match(named(a, "Secret")[0], /^pgbouncer-auth-[0-9a-f]{8}$/);
    assert.notStrictEqual(named(a, "ConfigMap")[0], named(b, "ConfigMap")[0]);
    // two processes need a second exporter connection string: the Secret's content changed too
    assert.notStrictEqual(named(a, "Secret")[0], named(b, "Secret")[0]);
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

  it("the Deployment mounts the ConfigMap and Secret of its own render, by their hashed names", () => {
    for (const r of [a, b]) {
      const d = r.owned.find((m) => m.kind === "Deployment") as unknown as {
        spec: {
          template: {
            spec: { volumes: { configMap?: { name: string }; secret?: { secretName: string } }[] };
          };
        };
      };
      const vols = d.spec.template.spec.volumes;
      const cm = pooler(r, "ConfigMap").metadata.name;
      const secret = pooler(r, "Secret").metadata.name;
      assert.ok(
        vols.some((v) => v.configMap?.name === cm),
        cm,
      );
      assert.ok(
        vols.some((v) => v.secret?.secretName === secret),
        secret,
      );
    }
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
      const d = r.owned.find((m) => m.kind === "Deployment") as unknown as {
        spec: { template: { metadata: { labels: Record<string, string> } } };
      };
      assert.strictEqual(d.spec.template.metadata.labels[RENDER_SET_LABEL], undefined);
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

  it("without the prune, the old ConfigMap and Secret stay behind (and only they)", () => {
    const live = new Map<string, Manifest>();
    for (const r of [a, b]) for (const m of r.owned) live.set(key(m), m);
    const current = new Set(b.owned.map(key));
    assert.deepStrictEqual(
      [...live.keys()].filter((k) => !current.has(k)).sort(),
      [key(pooler(a, "ConfigMap")), key(pooler(a, "Secret"))].sort(),
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
