/**
 * The offline render (`npm run render`) as the e2e scenarios use it: one render per folder, with settings
 * changed by `--set`, read back as manifests and its `stack.json`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { renderToDir } from "../../render/spawn";
import { RENDER_DIRS } from "../../render/gitops";
import type { RenderIndex } from "../../render/main";

export interface Render {
  readonly dir: string;
  readonly index: RenderIndex;
  /** The objects of `kubernetes/` (the render's own), parsed. */
  readonly objects: readonly RenderedObject[];
}

export type RenderedObject = Record<string, unknown> & {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

/** `npm run render -- --stack <stack> --out <dir> --set k=v ...`, in a child process (its own mock engine). */
export async function render(
  stack: string,
  dir: string,
  sets: Readonly<Record<string, string>> = {},
): Promise<Render> {
  await renderToDir(stack, dir, sets);
  const objectsDir = path.join(dir, RENDER_DIRS.objects);
  return {
    dir,
    index: JSON.parse(fs.readFileSync(path.join(dir, "stack.json"), "utf8")) as RenderIndex,
    objects: fs
      .readdirSync(objectsDir)
      .filter((f) => f.endsWith(".yaml"))
      .sort()
      .map((f) => yaml.load(fs.readFileSync(path.join(objectsDir, f), "utf8")) as RenderedObject),
  };
}

/** The render's object of `kind` (exactly one). */
export function objectOf(r: Render, kind: string): RenderedObject {
  const found = r.objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`render ${r.dir}: ${found.length} objects of kind ${kind}`);
  return JSON.parse(JSON.stringify(found[0])) as RenderedObject;
}
