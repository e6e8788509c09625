/**
 * The project's Markdown pages, for the doc tests: which they are, their text, and the anchors GitHub gives
 * their headings.
 */
import * as fs from "fs";
import * as path from "path";
import { PROJECT_DIR } from "../../stacks/stack-file";

/** Every page a reader is sent to, relative to the project: the README, BENCHMARKS.md, docs/, components. */
export function docPages(): string[] {
  const docs = fs
    .readdirSync(path.join(PROJECT_DIR, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  const components = fs
    .readdirSync(path.join(PROJECT_DIR, "components"))
    .map((d) => `components/${d}/README.md`)
    .filter((f) => fs.existsSync(path.join(PROJECT_DIR, f)));
  return ["README.md", "BENCHMARKS.md", ...docs.sort(), ...components.sort()];
}

export function readDoc(page: string): string {
  return fs.readFileSync(path.join(PROJECT_DIR, page), "utf8");
}

/** The text with fenced code blocks blanked out (a `# comment` in a shell block is no heading). */
export function withoutCode(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, (block) => block.replace(/[^\n]/g, ""));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a page's headings, a repeated one numbered as GitHub does (`-1`, `-2`). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of withoutCode(text).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}
