import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";

/**
 * The stack files and the config keys of the program: pure, so that the policy pack, the tools and the
 * tests read a stack without loading the program's components.
 */

/** The root of the project, where Pulumi.yaml and the stack files live. */
export const PROJECT_DIR = path.resolve(__dirname, "..");

/**
 * The config of `Pulumi.<stack>.yaml` as the Pulumi CLI hands it to the program: every key a string,
 * structured values JSON-encoded. Used by the offline render and the tests, which run without the CLI.
 */
export function stackFileConfig(stack: string, dir: string = PROJECT_DIR): Record<string, string> {
  const file = path.join(dir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) {
    throw new Error(`no stack file ${file}; stacks here: ${listStacks(dir).join(", ") || "none"}`);
  }
  const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc?.config ?? {})) {
    if (typeof v === "object" && v !== null && "secure" in v) continue; // encrypted: needs the CLI
    out[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return out;
}

export function listStacks(dir: string = PROJECT_DIR): string[] {
  return fs
    .readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/**
 * The project-level config of `Pulumi.yaml` (`config:`), each key's value as the CLI merges it into every
 * stack: its `value`, or, for the project's own keys, its `default`.
 */
export function projectConfig(dir: string = PROJECT_DIR): Record<string, unknown> {
  const doc = yaml.load(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8")) as {
    config?: Record<string, unknown>;
  } | null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc?.config ?? {})) {
    const typed = typeof v === "object" && v !== null && !Array.isArray(v);
    out[k] = typed
      ? ((v as { value?: unknown; default?: unknown }).value ?? (v as { default?: unknown }).default)
      : v;
  }
  return out;
}

/** The packages whose default providers the project disables (`pulumi:disable-default-providers`). */
export function disabledDefaultProviders(dir: string = PROJECT_DIR): string[] {
  const list = projectConfig(dir)["pulumi:disable-default-providers"];
  return Array.isArray(list) ? list.map(String) : [];
}

/** The project name in `Pulumi.yaml`: every setting is `clipper-pgbouncer:<key>`. */
export const CONFIG_NAMESPACE = "clipper-pgbouncer";

/** The full config key of a setting section, e.g. `clipper-pgbouncer:pool`. */
export function key(section: string): string {
  return `${CONFIG_NAMESPACE}:${section}`;
}

/**
 * The raw settings of the running stack: every `clipper-pgbouncer:*` config value, JSON-decoded where it is
 * an object (as `pulumi config set --path` stores it).
 */
export function rawStackConfig(all: Readonly<Record<string, string>>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  const prefix = `${CONFIG_NAMESPACE}:`;
  for (const [k, v] of Object.entries(all)) {
    if (!k.startsWith(prefix)) continue;
    let value: unknown = v;
    try {
      value = JSON.parse(v);
    } catch {
      // a plain string setting
    }
    raw[k.slice(prefix.length)] = value;
  }
  return raw;
}
