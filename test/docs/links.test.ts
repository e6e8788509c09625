/**
 * Every Markdown page against the tree: each link reaches a file (and a heading, for an anchor), each
 * project path it names exists, and each `npm run` script it names is one. Files move; these keep the
 * pages honest about it.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_DIR } from "../../stacks/stack-file";
import { anchors, docPages, readDoc, slug, withoutCode } from "../support/docs";

const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};

/** Top-level folders of this repository; a path that starts with one is a project path. */
const PROJECT_ROOTS = ["components", "docs", "policy", "stacks", "test", "testing", "tools"];

/** Project paths a text names, e.g. `tools/render/main.ts` or `test/unit/` (globs cut at the first `*`). */
export function projectPaths(text: string): string[] {
  const re = new RegExp(`(?<![\\w./~-])((?:${PROJECT_ROOTS.join("|")})/[\\w./-]*)`, "g");
  return [...text.matchAll(re)].map((m) => m[1].replace(/[.,]+$/, ""));
}

describe("the docs against the tree", () => {
  const pages = docPages();

  it("finds the pages", () => {
    for (const p of ["README.md", "BENCHMARKS.md", "docs/runbook.md", "docs/settings.md"]) {
      assert.ok(pages.includes(p), p);
    }
    assert.ok(pages.includes("components/credentials/README.md"));
  });

  it("the anchor rule gives GitHub's anchors", () => {
    assert.strictEqual(slug("Decommission (`pulumi destroy`)"), "decommission-pulumi-destroy");
    assert.strictEqual(
      slug("Field ownership: the backend team's own applies"),
      "field-ownership-the-backend-teams-own-applies",
    );
    assert.strictEqual(
      slug("Recovery after a PostgreSQL restart (`server_login_retry`)"),
      "recovery-after-a-postgresql-restart-server_login_retry",
    );
    assert.deepStrictEqual([...anchors("# A\n```sh\n# not a heading\n```\n## A\n")], ["a", "a-1"]);
  });

  for (const page of pages) {
    describe(page, () => {
      const text = readDoc(page);
      const dir = path.dirname(page);

      it("links only to files and headings that exist", () => {
        const links = [...withoutCode(text).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
        for (const link of links.filter((l) => !/^[a-z]+:/.test(l))) {
          const [file, anchor] = link.split("#");
          const target = file ? path.normalize(path.join(dir, file)) : page;
          assert.ok(fs.existsSync(path.join(PROJECT_DIR, target)), `${link}: no ${target}`);
          if (anchor !== undefined && target.endsWith(".md")) {
            assert.ok(anchors(readDoc(target)).has(anchor), `${link}: no heading #${anchor} in ${target}`);
          }
        }
      });

      it("names only project paths that exist", () => {
        // A path cut at a glob's `*` must be the start of some file's name in its folder.
        const exists = (p: string) => {
          const full = path.join(PROJECT_DIR, p);
          if (fs.existsSync(full)) return true;
          const dir = path.dirname(full);
          return fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith(path.basename(full)));
        };
        const missing = projectPaths(text).filter((p) => !exists(p));
        assert.deepStrictEqual([...new Set(missing)], []);
      });

      it("names only npm scripts that exist", () => {
        for (const m of text.matchAll(/npm run ([a-z0-9:-]+)/g)) {
          assert.ok(pkg.scripts[m[1]], `npm run ${m[1]} is not a script`);
        }
      });
    });
  }

  it("the path check can fail", () => {
    assert.deepStrictEqual(projectPaths("see `tools/offline/engine.ts`, https://x/tools/y and ~/tools/z."), [
      "tools/offline/engine.ts",
    ]);
    assert.ok(!fs.existsSync(path.join(PROJECT_DIR, "tools/offline/engine.ts")));
  });
});
