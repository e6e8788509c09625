/**
 * The policy pack loads none of the program's Pulumi components: the CLI type-checks it with ts-node at
 * every `pulumi preview --policy-pack policy`, so everything it imports is compiled each time.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_DIR } from "../../stacks/stack-file";

/** Every project file the module at `file` reaches through relative imports, itself included. */
function reachable(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = fs.readFileSync(file, "utf8");
  for (const m of text.matchAll(/(?:from|import)\s+"(\.{1,2}\/[^"]+)"/g)) {
    const base = path.resolve(path.dirname(file), m[1]);
    const next = [`${base}.ts`, path.join(base, "index.ts")].find((f) => fs.existsSync(f));
    if (next) reachable(next, seen);
  }
  return seen;
}

describe("the policy pack's imports", () => {
  const files = [...reachable(path.join(PROJECT_DIR, "policy", "index.ts"))].map((f) =>
    path.relative(PROJECT_DIR, f),
  );

  it("reach the pure modules it needs (the check can fail: it sees the stack files' module)", () => {
    assert.ok(files.includes(path.join("stacks", "stack-file.ts")), files.join("\n"));
    assert.ok(files.includes(path.join("components", "pgbouncer", "budget.ts")), files.join("\n"));
  });

  it("reach no Pulumi component, no barrel and no Grafana dashboard", () => {
    const heavy = files.filter(
      (f) => /(^|\/)(component|vault|dashboard|index)\.ts$/.test(f) && !f.startsWith("policy/"),
    );
    assert.deepStrictEqual(heavy, []);
    for (const f of files) {
      const text = fs.readFileSync(path.join(PROJECT_DIR, f), "utf8");
      assert.doesNotMatch(text, /from "@pulumi\/(kubernetes|vault)"|from "@pulumiverse\/grafana"/, f);
    }
  });
});
