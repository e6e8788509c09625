/**
 * The local world, ready for a person to try the program with the real CLI (`npm run e2e -- --world-only
 * --keep`, README "Try it"): per stack a folder `try/<stack>/` with the project's Pulumi.yaml and a copy of
 * `Pulumi.<stack>.yaml` carrying the e2e's overrides, a file backend folder that exists, and the environment
 * and the three commands (stack init, preview, up) to run from the repository. The e2e run itself executes
 * those very lines (`checkTryIt`), so what is printed is what was run.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { PROJECT_DIR, key } from "../../stacks/stack-file";
import { run } from "../common";
import { PASSPHRASE } from "./clients/pulumi";
import type { World } from "./context";

export interface TryIt {
  readonly stack: string;
  /** `export` lines: the world's cluster and Vault, the backend, the passphrase. */
  readonly env: Readonly<Record<string, string>>;
  /** The toolchain's folder, appended to the shell's own PATH. */
  readonly bin: string;
  /** stack init, preview and up, in that order, to run from the repository's root. */
  readonly commands: readonly string[];
}

/** Writes `<world>/try/<stack>/` and the backend folder; returns what to run. */
export function prepareTry(
  world: World,
  bin: string,
  stack: string,
  overrides: Readonly<Record<string, string>>,
): TryIt {
  const root = path.join(world.dir, "try");
  const dir = path.join(root, stack);
  const state = path.join(root, "pulumi-state");
  for (const d of [dir, state, path.join(root, "pulumi-home")]) fs.mkdirSync(d, { recursive: true });
  fs.copyFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  const stackFile = path.join(dir, `Pulumi.${stack}.yaml`);
  const original = fs.readFileSync(path.join(PROJECT_DIR, `Pulumi.${stack}.yaml`), "utf8");
  fs.writeFileSync(stackFile, withOverrides(original, overrides));
  const policy = "--policy-pack policy";
  return {
    stack,
    bin,
    env: {
      KUBECONFIG: world.kubeconfig,
      VAULT_ADDR: world.vaultAddr,
      VAULT_TOKEN: world.vaultToken,
      PULUMI_BACKEND_URL: `file://${state}`,
      PULUMI_HOME: path.join(root, "pulumi-home"),
      PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      // `npm test` type-checks the program; the CLI only has to run it (about 10 s less per command).
      PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    },
    commands: [
      // `stack init` writes the passphrase's salt into the Pulumi.<stack>.yaml it finds: the copy, never ours.
      `pulumi stack init ${stack} --cwd ${dir} --secrets-provider passphrase`,
      `pulumi preview --stack ${stack} --config-file ${stackFile} ${policy}`,
      `pulumi up --stack ${stack} --config-file ${stackFile} ${policy}`,
    ],
  };
}

/**
 * A stack file's text with `overrides` set (`section.key.path` -> value, as `pulumi config set --path`
 * takes them; "true"/"false" and numbers become YAML booleans and numbers). Comments do not survive.
 */
export function withOverrides(text: string, overrides: Readonly<Record<string, string>>): string {
  const doc = (yaml.load(text) ?? {}) as { config?: Record<string, unknown> };
  const config = (doc.config ??= {});
  for (const [dotted, raw] of Object.entries(overrides)) {
    const [section, ...rest] = dotted.split(".");
    const value: unknown =
      raw === "true" ? true : raw === "false" ? false : /^-?\d+$/.test(raw) ? Number(raw) : raw;
    if (rest.length === 0) {
      config[key(section)] = value;
      continue;
    }
    let node = (config[key(section)] ??= {}) as Record<string, unknown>;
    for (const part of rest.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[rest[rest.length - 1]] = value;
  }
  return yaml.dump(doc, { lineWidth: -1 });
}

/** The lines a shell needs: the exports, then the commands (the first `upTo` of them). */
export function tryScript(t: TryIt, upTo = t.commands.length): string[] {
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  return [
    `export PATH="$PATH:${t.bin}"`,
    ...Object.entries(t.env).map(([k, v]) => `export ${k}=${quote(v)}`),
    ...t.commands.slice(0, upTo),
  ];
}

/**
 * Runs the printed stack init and preview as a person would (bash, from the repository), and asserts the
 * preview plans the pooler and leaves `Pulumi.<stack>.yaml` of the repository untouched.
 */
export async function checkTryIt(t: TryIt, log: (line: string) => void): Promise<void> {
  const script = ["set -euo pipefail", `cd ${PROJECT_DIR}`, ...tryScript(t, 2)].join("\n");
  const before = fs.readFileSync(path.join(PROJECT_DIR, `Pulumi.${t.stack}.yaml`), "utf8");
  const started = Date.now();
  const r = await run("bash", ["-c", script], { env: { PULUMI_CONFIG_PASSPHRASE: "" }, timeoutMs: 300_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  log(
    `  try-it: stack init and preview of ${t.stack} as printed: exit ${r.code} in ${(Date.now() - started) / 1000} s`,
  );
  assert.equal(r.code, 0, `the printed commands fail:\n${out.split("\n").slice(-30).join("\n")}`);
  assert.match(out, /\+\s+\d+ to create/, `the preview plans the stack's resources:\n${out}`);
  assert.equal(
    fs.readFileSync(path.join(PROJECT_DIR, `Pulumi.${t.stack}.yaml`), "utf8"),
    before,
    "stack init wrote into the repository's stack file",
  );
}
