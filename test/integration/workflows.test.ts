/**
 * The GitHub Actions workflows, parsed: every stack is previewed on pull requests (with the policy pack and a
 * PR comment) and updated on main, prod only behind the `production` environment, tests run exactly as
 * `npm test`, and every credential comes from GitHub secrets. actionlint runs when it is installed.
 */
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { PROJECT_DIR, listStacks } from "../../stacks/stack-file";

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  environment?: string | { name: string };
  if?: string;
  container?: unknown;
  strategy?: { matrix?: { include?: Record<string, string>[]; node?: number[] } };
  steps: Step[];
}
interface Workflow {
  on: Record<string, { branches?: string[] } | null>;
  jobs: Record<string, Job>;
}

const DIR = path.join(PROJECT_DIR, ".github", "workflows");
/** Every credential the program and the CLI read from the environment. */
const CREDENTIALS = ["PULUMI_ACCESS_TOKEN", "VAULT_TOKEN", "GRAFANA_AUTH"];
/** The addresses each stack file pins (`providers`): from an environment's secrets they could only disagree. */
const PINNED = ["VAULT_ADDR", "GRAFANA_URL"];

function load(file: string): Workflow {
  return yaml.load(fs.readFileSync(path.join(DIR, file), "utf8")) as Workflow;
}

function needsOf(job: Job): string[] {
  return job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs];
}

/** Every job `name` waits for, directly or not. */
function upstream(wf: Workflow, name: string): Set<string> {
  const seen = new Set<string>();
  const visit = (n: string) => {
    for (const d of needsOf(wf.jobs[n])) {
      if (!seen.has(d)) {
        seen.add(d);
        visit(d);
      }
    }
  };
  visit(name);
  return seen;
}

function pulumiSteps(job: Job): Step[] {
  return job.steps.filter((s) => s.uses?.startsWith("pulumi/actions@"));
}

/** The stack names a job runs, its matrix expanded. */
function stacksOf(job: Job): string[] {
  const names = pulumiSteps(job).map((s) => String(s.with?.["stack-name"]));
  const include = job.strategy?.matrix?.include ?? [];
  return names.flatMap((n) => (n === "${{ matrix.stack }}" ? include.map((m) => m.stack) : [n]));
}

function environmentOf(job: Job): string | undefined {
  return typeof job.environment === "object" ? job.environment.name : job.environment;
}

const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
  engines: { node: string };
};
const ciRun = fs.readFileSync(path.join(PROJECT_DIR, ".ci", "run"), "utf8");

describe("workflows", () => {
  const pr = load("pr.yml");
  const deploy = load("deploy.yml");

  for (const [file, wf] of [
    ["pr.yml", pr],
    ["deploy.yml", deploy],
  ] as const) {
    describe(file, () => {
      it("runs the tests exactly as `npm test` (package.json's test script), after `npm ci`", () => {
        assert.ok(pkg.scripts.test, "package.json has no test script");
        const testJobs = Object.entries(wf.jobs).filter(([, j]) => j.steps.some((s) => s.run === "npm test"));
        assert.strictEqual(testJobs.length, 1, "exactly one job runs npm test");
        const runs = testJobs[0][1].steps.map((s) => s.run).filter((r) => r !== undefined);
        assert.ok(runs.indexOf("npm ci") >= 0 && runs.indexOf("npm ci") < runs.indexOf("npm test"));
        // No step runs a piece of the test script on its own instead (a drifted copy).
        for (const j of Object.values(wf.jobs)) {
          for (const s of j.steps)
            assert.ok(!/\b(mocha|tsc|eslint)\b/.test(s.run ?? ""), `${s.run} bypasses npm test`);
        }
        // Every Pulumi job waits for the tests.
        for (const [name, j] of Object.entries(wf.jobs)) {
          if (pulumiSteps(j).length > 0)
            assert.ok(upstream(wf, name).has(testJobs[0][0]), `${name} skips the tests`);
        }
      });

      it("runs what .ci/run runs before the e2e, in its order: the install script, npm ci, npm test", () => {
        const testJob = Object.values(wf.jobs).find((j) => j.steps.some((s) => s.run === "npm test"));
        assert.ok(testJob);
        const runs = testJob.steps.map((s) => s.run?.trim()).filter((r): r is string => r !== undefined);
        const order = ["bash tools/install-test-deps.sh", "npm ci", "npm test"];
        const at = order.map((r) => runs.indexOf(r));
        assert.ok(
          at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1])),
          `${file} runs ${runs.join(" | ")}`,
        );
        // .ci/run's test line is the same three commands, in the same order.
        const ciLine = ciRun.split("\n").find((l) => l.includes("npm test")) ?? "";
        const ciAt = ["tools/install-test-deps.sh", "npm ci", "npm test"].map((c) => ciLine.indexOf(c));
        assert.ok(
          ciAt.every((i, k) => i >= 0 && (k === 0 || i > ciAt[k - 1])),
          ciLine,
        );
      });

      it("sets up Go before the install script, which builds the dashboard validator with it", () => {
        const testJob = Object.values(wf.jobs).find((j) => j.steps.some((s) => s.run === "npm test"));
        assert.ok(testJob);
        const goAt = testJob.steps.findIndex((s) => s.uses?.startsWith("actions/setup-go@"));
        const installAt = testJob.steps.findIndex((s) => s.run?.trim() === "bash tools/install-test-deps.sh");
        assert.ok(
          goAt >= 0 && goAt < installAt,
          `setup-go at step ${goAt}, the install script at ${installAt}`,
        );
        const goSum = testJob.steps[goAt].with?.["cache-dependency-path"];
        assert.ok(
          typeof goSum === "string" && fs.existsSync(path.join(PROJECT_DIR, goSum)),
          `no ${String(goSum)}`,
        );
      });

      it("tests on every Node release package.json declares (22, 24 and 26), with that Node", () => {
        const testJob = Object.values(wf.jobs).find((j) => j.steps.some((s) => s.run === "npm test"));
        const nodes = testJob?.strategy?.matrix?.node ?? [];
        assert.deepStrictEqual(nodes, [22, 24, 26]);
        const majors = pkg.engines.node.split("||").map((r) => Number(/(\d+)\./.exec(r)?.[1]));
        assert.deepStrictEqual(majors, nodes, `engines ${pkg.engines.node}`);
        const setup = testJob?.steps.find((s) => s.uses?.startsWith("actions/setup-node@"));
        assert.strictEqual(setup?.with?.["node-version"], "${{ matrix.node }}");
      });

      it("every Pulumi step runs the policy pack and gets every credential, and no address, from GitHub secrets", () => {
        assert.ok(fs.existsSync(path.join(PROJECT_DIR, "policy", "PulumiPolicy.yaml")));
        for (const j of Object.values(wf.jobs)) {
          for (const s of pulumiSteps(j)) {
            assert.strictEqual(s.uses, "pulumi/actions@v6");
            assert.strictEqual(s.with?.policyPacks, "policy");
            for (const c of CREDENTIALS) assert.strictEqual(s.env?.[c], `\${{ secrets.${c} }}`, c);
            for (const a of PINNED) assert.ok(!(a in (s.env ?? {})), `${a}: the stack file pins it`);
            // The kubeconfig is written from a secret before the Pulumi step.
            const kube = j.steps.find((x) => x.env?.KUBECONFIG_DATA !== undefined);
            assert.strictEqual(kube?.env?.KUBECONFIG_DATA, "${{ secrets.KUBECONFIG }}");
            assert.ok(j.steps.indexOf(kube) < j.steps.indexOf(s));
          }
        }
      });

      it("holds no secret literal", () => {
        const text = fs.readFileSync(path.join(DIR, file), "utf8");
        const literals = [
          /pul-[0-9a-f]{40}/, // Pulumi access token
          /\bhv[sb]\.[A-Za-z0-9_-]{20,}/, // Vault token
          /\bglsa_[A-Za-z0-9_]{20,}/, // Grafana service account token
          /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
          /client-key-data:|client-certificate-data:|token:\s*\S{20,}/, // an inline kubeconfig
          /[a-z]+:\/\/[^/\s:@]+:[^/\s@]+@/i, // a URL with a password
        ];
        for (const p of literals) assert.ok(!p.test(text), `${file} matches ${p}`);
        // Any env value naming a credential is a secrets reference.
        for (const j of Object.values(wf.jobs)) {
          for (const s of j.steps) {
            for (const [k, v] of Object.entries(s.env ?? {})) {
              if (/TOKEN|AUTH|PASSWORD|KUBECONFIG|VAULT|GRAFANA/.test(k)) {
                assert.match(v, /^\$\{\{ secrets\.[A-Z_]+ \}\}$/, `${file}: ${k}`);
              }
            }
          }
        }
      });
    });
  }

  describe("pr.yml", () => {
    it("runs on pull requests", () => {
      assert.ok("pull_request" in pr.on);
    });

    it("previews every stack, with the result as a PR comment", () => {
      const previews = Object.values(pr.jobs).filter((j) =>
        pulumiSteps(j).some((s) => s.with?.command === "preview"),
      );
      assert.deepStrictEqual(previews.flatMap(stacksOf).sort(), listStacks());
      for (const j of previews) {
        for (const s of pulumiSteps(j)) {
          assert.strictEqual(s.with?.command, "preview");
          assert.strictEqual(s.with?.["comment-on-pr"], true);
        }
      }
    });

    it("never updates a stack, and never uses the production environment", () => {
      for (const j of Object.values(pr.jobs)) {
        for (const s of pulumiSteps(j)) assert.strictEqual(s.with?.command, "preview");
        const envs = [environmentOf(j), ...(j.strategy?.matrix?.include ?? []).map((m) => m.environment)];
        assert.ok(!envs.includes("production"));
      }
    });
  });

  describe("deploy.yml", () => {
    it("runs on pushes to main", () => {
      assert.deepStrictEqual(deploy.on.push?.branches, ["main"]);
    });

    function upJob(stack: string): [string, Job] {
      const found = Object.entries(deploy.jobs).filter(([, j]) =>
        pulumiSteps(j).some((s) => s.with?.command === "up" && s.with?.["stack-name"] === stack),
      );
      assert.strictEqual(found.length, 1, `one job updates ${stack}`);
      return found[0];
    }

    it("updates every stack", () => {
      for (const stack of listStacks()) upJob(stack);
    });

    it("refreshes before each update, so that a certificate due for renewal is re-issued", () => {
      for (const stack of listStacks()) {
        const up = pulumiSteps(upJob(stack)[1]).find((s) => s.with?.command === "up");
        assert.strictEqual(up?.with?.refresh, true, stack);
      }
    });

    it("updates prod only behind the production environment, after staging", () => {
      const [prodName, prod] = upJob("prod");
      const [stagingName, staging] = upJob("staging");
      assert.strictEqual(environmentOf(prod), "production");
      assert.notStrictEqual(environmentOf(staging), "production");
      assert.ok(upstream(deploy, prodName).has(stagingName));
    });
  });

  describe("actionlint", () => {
    const candidates = [
      ...(process.env.PATH ?? "").split(path.delimiter).map((d) => path.join(d, "actionlint")),
      path.join(os.homedir(), "go", "bin", "actionlint"),
    ];
    const bin = candidates.find((c) => fs.existsSync(c));

    it("finds no problem in either workflow (skipped when actionlint is not installed)", function () {
      if (!bin) this.skip();
      const out = execFileSync(bin, [path.join(DIR, "pr.yml"), path.join(DIR, "deploy.yml")], {
        encoding: "utf8",
        stdio: "pipe",
      });
      assert.strictEqual(out.trim(), "");
    });
  });
});
