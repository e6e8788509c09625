/**
 * Offline render: `npm run render -- --stack staging [--out DIR] [--set section.field=value ...]`. Runs the
 * same program `pulumi up` runs, under Pulumi's mock engine, and writes every resource it would create:
 * Kubernetes objects as YAML manifests (the render's own under `kubernetes/`, the patches of the backend's
 * objects under `patches/`), other providers' resources as JSON, secrets redacted, and `stack.json` with
 * the outputs, the resource list and what a pruning `kubectl apply` needs. Vault is answered with
 * placeholders (offline there is no Vault); they are secrets like the real values, so they are redacted too.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { FIELD_MANAGER } from "../../components/backend-route";
import { PROJECT_DIR, listStacks, stackFileConfig, CONFIG_NAMESPACE } from "../../stacks/stack-file";
import { type OfflineRun, UNKNOWN_IN_PREVIEW, runOffline } from "../../testing/engine";
import { offlineVault } from "../../testing/offline-vault";
import { Args, UsageError, runMain } from "../common";
import { type GitOpsApply, type Manifest, RENDER_DIRS, gitOpsApply } from "./gitops";
import {
  REDACTED,
  RENDER_SET_LABEL,
  isPatch,
  redact,
  renderSetValue,
  toManifest,
} from "../../testing/manifests";

/**
 * The stack's config with one setting changed: `pgbouncer.processesPerPod` and `2` give the `pgbouncer`
 * section of the stack file with `processesPerPod: 2`. The value is JSON when it parses, else a string.
 */
export function withSetting(
  config: Readonly<Record<string, string>>,
  setting: string,
  value: string,
): Record<string, string> {
  const [section, ...fieldPath] = setting.split(".");
  const key = `${CONFIG_NAMESPACE}:${section}`;
  let parsed: unknown = value;
  try {
    parsed = JSON.parse(value);
  } catch {
    // a plain string
  }
  if (fieldPath.length === 0) {
    return { ...config, [key]: typeof parsed === "string" ? parsed : JSON.stringify(parsed) };
  }
  const root = (config[key] === undefined ? {} : JSON.parse(config[key])) as Record<string, unknown>;
  let node = root;
  for (const f of fieldPath.slice(0, -1)) {
    const next = node[f];
    node = node[f] = typeof next === "object" && next !== null ? { ...next } : {};
  }
  node[fieldPath[fieldPath.length - 1]] = parsed;
  return { ...config, [key]: JSON.stringify(root) };
}

/** The stack's config with each of `sets` changed in turn (see {@link withSetting}). */
export function withSettings(
  config: Readonly<Record<string, string>>,
  sets: Readonly<Record<string, string>>,
): Record<string, string> {
  return Object.entries(sets).reduce((c, [k, v]) => withSetting(c, k, v), { ...config });
}

/** `kind-name.yaml`: stable across renders, so a re-render in a Git repository changes files in place. */
function fileName(kind: string, name: string, ext: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, "-").toLowerCase();
  return `${safe(kind)}-${safe(name)}.${ext}`;
}

/** What `stack.json` holds. */
export interface RenderIndex {
  readonly outputs: Record<string, unknown>;
  /** Every resource in registration order; `file` is relative to the render's folder. */
  readonly resources: { type: string; name: string; file?: string }[];
  readonly gitops: GitOpsApply;
}

/**
 * Writes the run's resources under `outDir` (emptied first): `kubernetes/` holds the objects the render
 * owns, each with the render-set label; `patches/` the server-side patches of the backend's objects;
 * `<provider>/` the JSON of other providers' resources; `stack.json` the index. Returns the files written,
 * relative to `outDir`.
 */
export function writeRender(run: OfflineRun, outDir: string): string[] {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const renderSet = renderSetValue(CONFIG_NAMESPACE, run.stack);
  const written: string[] = [];
  const write = (dir: string, file: string, text: string): string => {
    fs.mkdirSync(path.join(outDir, dir), { recursive: true });
    const rel = path.join(dir, file);
    fs.writeFileSync(path.join(outDir, rel), text);
    written.push(rel);
    return rel;
  };
  const inventory: RenderIndex["resources"] = [];
  const owned: Manifest[] = [];
  let forceConflicts = false;
  for (const r of run.resources) {
    const manifest = toManifest(r, renderSet);
    if (manifest) {
      const patch = isPatch(r.type);
      const dir = patch ? RENDER_DIRS.patches : RENDER_DIRS.objects;
      const text = yaml.dump(manifest, { noRefs: true, lineWidth: 120 });
      const file = write(dir, fileName(String(manifest.kind), r.name, "yaml"), text);
      inventory.push({ type: r.type, name: r.name, file });
      if (patch) {
        const annotations = (manifest.metadata as { annotations?: Record<string, string> }).annotations;
        forceConflicts ||= annotations?.["pulumi.com/patchForce"] === "true";
      } else {
        owned.push(manifest as unknown as Manifest);
      }
    } else if (r.type.startsWith("clipper:") || r.type.startsWith("pulumi:")) {
      inventory.push({ type: r.type, name: r.name });
    } else {
      const [provider, , kind] = r.type.split(":");
      const file = write(
        provider,
        fileName(kind ?? "resource", r.name, "json"),
        JSON.stringify({ type: r.type, inputs: redact(r.inputs) }, null, 2),
      );
      inventory.push({ type: r.type, name: r.name, file });
    }
  }
  const outputs = Object.fromEntries(
    Object.entries(run.outputs).map(([k, v]) => [
      k,
      run.secretOutputs.includes(k) ? REDACTED : v === undefined ? UNKNOWN_IN_PREVIEW : v,
    ]),
  );
  const index: RenderIndex = {
    outputs,
    resources: inventory,
    gitops: gitOpsApply(owned, {
      labelKey: RENDER_SET_LABEL,
      labelValue: renderSet,
      fieldManager: FIELD_MANAGER,
      forceConflicts,
    }),
  };
  fs.writeFileSync(path.join(outDir, "stack.json"), JSON.stringify(index, null, 2));
  written.push("stack.json");
  return written;
}

/**
 * Renders `stack` into `outDir`. `config` sets or overrides full config keys (see `withSetting`), e.g. for
 * a second render with other settings.
 */
export async function renderStack(
  stack: string,
  outDir: string,
  config: Readonly<Record<string, string>> = {},
): Promise<string[]> {
  const run = await runOffline({ stack, config, vault: offlineVault(stack, { config }) });
  return writeRender(run, outDir);
}

const USAGE = `usage: npm run render -- --stack <${listStacks().join("|")}> [--out DIR] [--set section.field=value ...]`;

async function main(argv: readonly string[]): Promise<number> {
  const a = new Args(argv);
  const stack = a.string("stack");
  if (!listStacks().includes(stack)) {
    throw new UsageError(`--stack is "${stack}"; the stacks are ${listStacks().join(", ")}`);
  }
  const out = a.optional("out");
  const sets = a.all("set").map((s): [string, string] => {
    if (!/^[A-Za-z][\w.]*=/.test(s)) throw new UsageError(`--set "${s}" is not section.field=value`);
    return [s.slice(0, s.indexOf("=")), s.slice(s.indexOf("=") + 1)];
  });
  a.done();
  let config: Record<string, string> = {};
  for (const [k, v] of sets) config = withSetting({ ...stackFileConfig(stack), ...config }, k, v);
  const started = Date.now();
  const dir = path.resolve(out ?? path.join(PROJECT_DIR, "rendered", stack));
  const files = await renderStack(stack, dir, config);
  console.log(
    `rendered stack ${stack}: ${files.length} files in ${path.relative(process.cwd(), dir) || "."}`,
  );
  for (const f of files) console.log(`  ${f}`);
  console.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

if (require.main === module) runMain(USAGE, () => main(process.argv.slice(2)));
