/**
 * The shape of the tree: no import cycle between files or between the concerns of components/, the product
 * (the program, its policy pack, its offline engine and its unit and program tests) never imports tools/,
 * and each concern has two entries: a pure barrel (`index.ts`), from which no provider SDK is reachable, and
 * `resources.ts`, the Pulumi resources built with those SDKs. Read from the files' relative imports,
 * type-only ones and re-exports included.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_DIR } from "../../stacks/stack-file";
import { providerImports, reachable } from "../support/imports";

const SKIP = new Set(["node_modules", ".git", ".deps", "rendered", "bin"]);

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (SKIP.has(e.name)) return [];
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

/** file -> the project files it imports (relative imports resolved to .ts files or folder barrels). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(PROJECT_DIR)) {
    const text = fs.readFileSync(file, "utf8");
    const targets: string[] = [];
    for (const m of text.matchAll(/(?:from|import|require\()\s*"(\.{1,2}(?:\/[^"]*)?)"/g)) {
      const base = path.resolve(path.dirname(file), m[1]);
      const t = [`${base}.ts`, path.join(base, "index.ts")].find((f) => fs.existsSync(f));
      if (t) targets.push(path.relative(PROJECT_DIR, t));
    }
    graph.set(path.relative(PROJECT_DIR, file), targets);
  }
  return graph;
}

/** The cycles of a graph (each as a path that returns to its start), found by depth-first search. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, "open");
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === "open") found.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe("the tree's imports", () => {
  const graph = importGraph();

  it("sees the tree (the checks below can fail: a cycle made up here is found)", () => {
    assert.ok(graph.size > 100, `${graph.size} files`);
    assert.deepStrictEqual(
      cycles(
        new Map([
          ["a", ["b"]],
          ["b", ["a"]],
        ]),
      ),
      [["a", "b", "a"]],
    );
  });

  it("have no cycle between files", () => {
    assert.deepStrictEqual(cycles(graph), []);
  });

  it("have no cycle between the concerns of components/", () => {
    const concern = (f: string) => (f.startsWith("components/") ? f.split("/")[1] : undefined);
    const folders = new Map<string, string[]>();
    for (const [f, targets] of graph) {
      const from = concern(f);
      if (!from) continue;
      const to = targets.map(concern).filter((c): c is string => c !== undefined && c !== from);
      folders.set(from, [...new Set([...(folders.get(from) ?? []), ...to])]);
    }
    assert.ok(folders.size >= 4, [...folders.keys()].join(", "));
    assert.deepStrictEqual(cycles(folders), []);
  });

  it("keep the product off tools/", () => {
    const product = /^(index\.ts|components\/|stacks\/|policy\/|testing\/|test\/)/;
    const leaks = [...graph]
      .filter(([f]) => product.test(f))
      .flatMap(([f, targets]) => targets.filter((t) => t.startsWith("tools/")).map((t) => `${f} -> ${t}`));
    assert.deepStrictEqual(leaks, []);
  });

  describe("the concerns of components/", () => {
    const concerns = fs
      .readdirSync(path.join(PROJECT_DIR, "components"), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    const files = [...graph.keys()];
    const inConcern = (c: string) => files.filter((f) => f.startsWith(`components/${c}/`));
    const heavy = (f: string) => providerImports(f).length > 0;

    it("are found, and the checks below see a provider SDK where there is one", () => {
      assert.ok(concerns.length >= 5, concerns.join(", "));
      assert.ok(heavy("components/pgbouncer/component.ts"));
      assert.ok(!heavy("components/pgbouncer/settings.ts"));
    });

    it("each have a pure barrel, and a resources.ts when a module of theirs uses a provider SDK", () => {
      const missing = concerns.flatMap((c) => [
        ...(graph.has(`components/${c}/index.ts`) ? [] : [`components/${c}/index.ts`]),
        ...(inConcern(c).some(heavy) && !graph.has(`components/${c}/resources.ts`)
          ? [`components/${c}/resources.ts`]
          : []),
      ]);
      assert.deepStrictEqual(missing, []);
    });

    it("keep their barrels pure: no provider SDK, component or resources.ts reachable from one", () => {
      const leaks = concerns.flatMap((c) =>
        [...reachable(`components/${c}/index.ts`)]
          .filter((f) => heavy(f) || /(^|\/)(component|resources)\.ts$/.test(f))
          .map((f) => `components/${c}/index.ts reaches ${f}`),
      );
      assert.deepStrictEqual(leaks, []);
    });

    it("export every module that uses a provider SDK from their resources.ts", () => {
      const unexported = concerns.flatMap((c) => {
        const entry = `components/${c}/resources.ts`;
        const exported = graph.has(entry) ? reachable(entry) : new Set<string>();
        return inConcern(c).filter((f) => heavy(f) && !exported.has(f));
      });
      assert.deepStrictEqual(unexported, []);
    });

    it("are entered from outside only through index.ts or resources.ts", () => {
      const entry = /^components\/[a-z-]+\/(index|resources)\.ts$/;
      const concernOf = (f: string) => (f.startsWith("components/") ? f.split("/")[1] : undefined);
      const deep = [...graph].flatMap(([f, targets]) =>
        targets
          .filter((t) => t.startsWith("components/") && concernOf(t) !== concernOf(f) && !entry.test(t))
          .map((t) => `${f} -> ${t}`),
      );
      assert.deepStrictEqual(deep, []);
    });

    it("reach each other only through their pure barrels", () => {
      const concernOf = (f: string) => (f.startsWith("components/") ? f.split("/")[1] : undefined);
      const crossings = [...graph].flatMap(([f, targets]) =>
        concernOf(f) === undefined
          ? []
          : targets
              .filter((t) => concernOf(t) !== undefined && concernOf(t) !== concernOf(f))
              .filter((t) => !t.endsWith("/index.ts"))
              .map((t) => `${f} -> ${t}`),
      );
      assert.deepStrictEqual(crossings, []);
    });
  });

  it("keep the settings and the stack files' module off the provider SDKs (the tools load them)", () => {
    for (const entry of ["stacks/settings.ts", "stacks/stack-file.ts"]) {
      const heavy = [...reachable(entry)].filter((f) => providerImports(f).length > 0);
      assert.deepStrictEqual(heavy, [], entry);
    }
  });
});
