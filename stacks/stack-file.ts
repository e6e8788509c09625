import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { type StackSettings, parseSettings, rawStackConfig } from "./settings";

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

/**
 * The validated settings of `Pulumi.<stack>.yaml`, as the program reads them (throws the program's own
 * `ConfigError` for a refused stack file). What tests, tools and the policy pack load a stack with.
 */
export function loadStackSettings(stack: string, dir: string = PROJECT_DIR): StackSettings {
  return parseSettings(rawStackConfig(stackFileConfig(stack, dir)));
}

export function listStacks(dir: string = PROJECT_DIR): string[] {
  return fs
    .readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}
