/**
 * README.md, the entry page: short, the fresh-machine commands first (and .ci/run runs the test command),
 * the three things a newcomer looks for (`pulumi up`, `pulumi preview`, the stack outputs), and a link to
 * every page of docs/. Links, paths and scripts of every page: links.test.ts; the settings: settings.test.ts.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_DIR, stackFileConfig, CONFIG_NAMESPACE, rawStackConfig } from "../../stacks/stack-file";
import { runOffline } from "../../testing/engine";
import { offlineVault } from "../../testing/offline-vault";
import { docPages, readDoc } from "../support/docs";

const readme = readDoc("README.md");

/** The names of the outputs table's rows. */
function documentedOutputs(): string[] {
  const section = readme.split(/^## .*stack outputs$/m)[1]?.split(/^## /m)[0] ?? "";
  return [...section.matchAll(/^\| `(\w+)`/gm)].map((m) => m[1]);
}

describe("README", () => {
  it("opens with the two fresh-machine commands, and .ci/run runs exactly the test command", () => {
    const block = /```bash\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    const [render, test] = block
      .trim()
      .split("\n")
      .map((l) => l.replace(/\s+#.*$/, "").trim());
    assert.strictEqual(render, "npm ci && npm run render -- --stack prod");
    assert.strictEqual(test, "bash tools/install-test-deps.sh && npm ci && npm test");
    const ci = fs.readFileSync(path.join(PROJECT_DIR, ".ci/run"), "utf8");
    const lines = ci.split("\n");
    const testLine = lines.indexOf(test.replace("npm ci", "npm ci --no-audit --no-fund"));
    assert.ok(testLine >= 0, ci);
    assert.ok(lines.indexOf("npm run e2e") > testLine, `.ci/run runs npm run e2e after the tests:\n${ci}`);
  });

  it("names the Node.js the tests need and the one command that gets it, which .ci/run runs before them", () => {
    const runtime = JSON.parse(
      fs.readFileSync(path.join(PROJECT_DIR, "tools", "node-runtime.json"), "utf8"),
    ) as { version: string; testMinimum: string };
    const command = 'eval "$(bash tools/node.sh)"';
    const intro = readme.split("```bash")[0];
    assert.ok(intro.includes(`\`${command}\``), "the README names the command before its first commands");
    assert.match(intro, new RegExp(`tests: ${runtime.testMinimum} or newer`));
    // The pinned Node is one package.json supports, and new enough for the tests.
    const major = Number(runtime.version.split(".")[0]);
    assert.ok(major >= Number(runtime.testMinimum), runtime.version);
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as {
      engines: { node: string };
    };
    assert.ok(
      pkg.engines.node.split("||").some((r) => r.trim().startsWith(`^${major}.`)),
      pkg.engines.node,
    );
    const lines = fs.readFileSync(path.join(PROJECT_DIR, ".ci/run"), "utf8").split("\n");
    const at = lines.indexOf(command);
    assert.ok(at >= 0 && at < lines.findIndex((l) => l.includes("npm test")), lines.join("\n"));
  });

  it("stays an entry page: at most 150 lines, none over 120 characters but table rows", () => {
    const lines = readme.trimEnd().split("\n");
    assert.ok(lines.length <= 150, `${lines.length} lines`);
    assert.deepStrictEqual(
      lines.filter((l) => l.length > 120 && !l.startsWith("|")),
      [],
    );
  });

  it("shows `pulumi up` per environment and `pulumi preview` with the policy pack", () => {
    for (const stack of ["staging", "prod"]) {
      assert.ok(readme.includes(`pulumi up --stack ${stack} --policy-pack policy`), stack);
      assert.ok(readme.includes(`pulumi preview --stack ${stack} --policy-pack policy`), stack);
    }
    assert.match(readme, /^## .*`pulumi preview`$/m);
  });

  it("lists every stack output the program exports, and only those", async () => {
    const prod = await runOffline({ stack: "prod", vault: offlineVault("prod") });
    const monitoring = rawStackConfig(stackFileConfig("prod")).monitoring as object;
    const config = {
      [`${CONFIG_NAMESPACE}:monitoring`]: JSON.stringify({ ...monitoring, mode: "plain" }),
    };
    const plain = await runOffline({ stack: "prod", config, vault: offlineVault("prod", { config }) });
    const exported = new Set([...Object.keys(prod.outputs), ...Object.keys(plain.outputs)]);
    assert.ok(exported.has("dbHost") && exported.has("scrapeJob"));
    assert.deepStrictEqual([...documentedOutputs()].sort(), [...exported].sort());
  });

  it("links to every page of docs/", () => {
    for (const page of docPages().filter((p) => p.startsWith("docs/"))) {
      assert.ok(readme.includes(`](${page})`), page);
    }
  });
});
