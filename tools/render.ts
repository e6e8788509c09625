/**
 * Offline render: `npm run render -- --stack staging [--out DIR]`. Runs the same program `pulumi up` runs,
 * under Pulumi's mock engine, and writes every resource it would create: Kubernetes objects as YAML
 * manifests, other providers' resources as JSON, secrets redacted. Vault is answered with placeholders
 * (offline there is no Vault); they are secrets like the real values, so they are redacted too.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { vaultReadsFor } from "../components/credentials";
import { parseSettings, rawStackConfig } from "../stacks/settings";
import { PROJECT_DIR, listStacks, stackFileConfig } from "../stacks/stack-file";
import { type OfflineRun, UNKNOWN_IN_PREVIEW, type VaultSource, runOffline } from "./offline/engine";
import { REDACTED, redact, toManifest } from "./offline/manifests";

/** Vault data for an offline run: every key the stack reads, with a placeholder value. */
export function placeholderVault(stack: string): VaultSource {
  const settings = parseSettings(rawStackConfig(stackFileConfig(stack)));
  const reads = vaultReadsFor(settings.credentials);
  return (mount, name) => {
    const read = reads.find((r) => r.mount === mount && r.name === name);
    if (!read) return undefined;
    return Object.fromEntries(read.keys.map((k) => [k, `offline-placeholder-${k}`]));
  };
}

function fileName(index: number, kind: string, name: string, ext: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, "-").toLowerCase();
  return `${String(index).padStart(2, "0")}-${safe(kind)}-${safe(name)}.${ext}`;
}

/** Writes the run's resources under `outDir`; returns the files written. */
export function writeRender(run: OfflineRun, outDir: string): string[] {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  const inventory: { type: string; name: string; file?: string }[] = [];
  let i = 0;
  for (const r of run.resources) {
    const manifest = toManifest(r);
    if (manifest) {
      const file = fileName(++i, String(manifest.kind), r.name, "yaml");
      fs.writeFileSync(path.join(outDir, file), yaml.dump(manifest, { noRefs: true, lineWidth: 120 }));
      written.push(file);
      inventory.push({ type: r.type, name: r.name, file });
    } else if (r.type.startsWith("clipper:") || r.type.startsWith("pulumi:")) {
      inventory.push({ type: r.type, name: r.name });
    } else {
      const file = fileName(++i, r.type.split(":").pop() ?? "resource", r.name, "json");
      fs.writeFileSync(
        path.join(outDir, file),
        JSON.stringify({ type: r.type, inputs: redact(r.inputs) }, null, 2),
      );
      written.push(file);
      inventory.push({ type: r.type, name: r.name, file });
    }
  }
  const outputs = Object.fromEntries(
    Object.entries(run.outputs).map(([k, v]) => [
      k,
      run.secretOutputs.includes(k) ? REDACTED : v === undefined ? UNKNOWN_IN_PREVIEW : v,
    ]),
  );
  fs.writeFileSync(
    path.join(outDir, "stack.json"),
    JSON.stringify({ outputs, resources: inventory }, null, 2),
  );
  written.push("stack.json");
  return written;
}

export async function renderStack(stack: string, outDir: string): Promise<string[]> {
  const run = await runOffline({ stack, vault: placeholderVault(stack) });
  return writeRender(run, outDir);
}

function usage(): never {
  console.error(`usage: npm run render -- --stack <${listStacks().join("|")}> [--out DIR]`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  let stack: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--stack") stack = argv[++i];
    else if (argv[i] === "--out") out = argv[++i];
    else usage();
  }
  if (!stack) usage();
  const started = Date.now();
  const dir = path.resolve(out ?? path.join(PROJECT_DIR, "rendered", stack));
  const files = await renderStack(stack, dir);
  console.log(
    `rendered stack ${stack}: ${files.length} files in ${path.relative(process.cwd(), dir) || "."}`,
  );
  for (const f of files) console.log(`  ${f}`);
  console.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
