import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { IssueList } from "../../components/common/config-reader";
import { deriveThresholds } from "../../components/monitoring";
import { parseSettings, loadStackSettings } from "../../stacks/settings";
import { PROJECT_DIR, stackFileConfig, CONFIG_NAMESPACE, rawStackConfig } from "../../stacks/stack-file";

const readme = fs.readFileSync(path.join(PROJECT_DIR, "README.md"), "utf8");
const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};

/** Every setting key the program reads, with both credential modes and an explicit backend namespace. */
function settingKeys(): string[] {
  const raw = rawStackConfig(stackFileConfig("prod"));
  const keys = new Set<string>();
  for (const variant of [
    raw,
    {
      ...raw,
      credentials: { authQuery: { dbname: "clipper" } },
      backend: { namespace: "other" },
      database: { ...(raw.database as object), cpuCores: 16 },
    },
  ]) {
    const issues = new IssueList();
    parseSettings(variant, issues);
    for (const k of issues.readKeys) keys.add(k.slice(CONFIG_NAMESPACE.length + 1));
  }
  return [...keys].sort();
}

describe("README", () => {
  it("documents every setting the program reads, in the settings table", () => {
    const keys = settingKeys();
    assert.ok(keys.length > 60, `only ${keys.length} keys found`);
    const table = readme.split("## Settings")[1].split("\n## ")[0];
    const missing = keys.filter((k) => !table.includes(`| \`${k}\``) && !/\.(resources|for)$/.test(k));
    assert.deepStrictEqual(missing, []);
  });

  it("documents no setting the program does not read", () => {
    const keys = new Set(settingKeys());
    const table = readme.split("## Settings")[1].split("\n## ")[0];
    const documented = [...table.matchAll(/^\| `([A-Za-z.]+)`/gm)].map((m) => m[1]);
    assert.ok(documented.length > 60);
    assert.deepStrictEqual(
      documented.filter((k) => !keys.has(k)),
      [],
    );
  });

  it("opens with the two fresh-machine commands, and .ci/run runs exactly the test command", () => {
    const block = /```bash\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    const [render, test] = block
      .trim()
      .split("\n")
      .map((l) => l.replace(/\s+#.*$/, "").trim());
    assert.strictEqual(render, "npm ci && npm run render -- --stack prod");
    const ci = fs.readFileSync(path.join(PROJECT_DIR, ".ci/run"), "utf8");
    const lines = ci.split("\n");
    const testLine = lines.indexOf(test.replace("npm ci", "npm ci --no-audit --no-fund"));
    assert.ok(testLine >= 0, ci);
    assert.ok(lines.indexOf("npm run e2e") > testLine, `.ci/run runs npm run e2e after the tests:\n${ci}`);
  });

  it("quotes each stack's exhaustion level as the alert derives it", () => {
    const flat = readme.replace(/\s+/g, " ");
    for (const stack of ["prod", "staging"]) {
      const s = loadStackSettings(stack);
      const t = deriveThresholds(s.pool, s.monitoring.exhaustionServerConnections);
      const quoted = `${t.exhaustionServerConnections} of ${stack}'s ${t.serverCap}`;
      assert.ok(flat.includes(quoted), quoted);
    }
  });

  it("names only npm scripts that exist", () => {
    const used = [...readme.matchAll(/npm run ([a-z0-9:-]+)/g)].map((m) => m[1]);
    assert.ok(used.length >= 4);
    for (const s of used) assert.ok(pkg.scripts[s], `npm run ${s} is not a script`);
  });

  it("names only files that exist", () => {
    const linked = [...readme.matchAll(/\]\(([^)#:]+)\)/g)].map((m) => m[1]);
    for (const f of linked) assert.ok(fs.existsSync(path.join(PROJECT_DIR, f)), f);
  });
});
