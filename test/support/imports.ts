/**
 * The project's import graph as its files write it: relative imports (type-only ones and re-exports
 * included) resolved to `.ts` files or folder barrels, and the packages each file names.
 */
import * as fs from "fs";
import * as path from "path";
import { PROJECT_DIR } from "../../stacks/stack-file";

/** The project files `file` imports (paths relative to the project). */
export function relativeImports(file: string): string[] {
  const abs = path.join(PROJECT_DIR, file);
  const text = fs.readFileSync(abs, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import|require\()\s*"(\.{1,2}(?:\/[^"]*)?)"/g)) {
    const base = path.resolve(path.dirname(abs), m[1]);
    const t = [`${base}.ts`, path.join(base, "index.ts")].find((f) => fs.existsSync(f));
    if (t) out.push(path.relative(PROJECT_DIR, t));
  }
  return out;
}

/** Every project file `file` reaches through relative imports, itself included. */
export function reachable(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const next of relativeImports(file)) reachable(next, seen);
  return seen;
}

/** The Pulumi providers' SDKs: a module that imports one builds resources, and is heavy to load. */
export const PROVIDER_SDKS = ["@pulumi/kubernetes", "@pulumi/vault", "@pulumiverse/grafana"];

/** The packages `file` imports (`@scope/name` or `name`, subpaths dropped), type-only imports included. */
export function packageImports(file: string): string[] {
  const text = fs.readFileSync(path.join(PROJECT_DIR, file), "utf8");
  return [...text.matchAll(/(?:from|import\(|require\()\s*"((?:@[^/"]+\/)?[^./"][^/"]*)(?:\/[^"]*)?"/g)].map(
    (m) => m[1],
  );
}

/** The Pulumi providers' SDKs `file` imports. */
export function providerImports(file: string): string[] {
  return packageImports(file).filter((p) => PROVIDER_SDKS.includes(p));
}
