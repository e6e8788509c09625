/**
 * The local world, ready for a person to try the program with the real CLI (`npm run e2e -- --world-only
 * --keep`, README "Try it"): per stack a folder `try/<stack>/` with the project's Pulumi.yaml and a copy of
 * `Pulumi.<stack>.yaml` carrying the e2e's overrides and pinned to this world (its Vault's address), a file
 * backend folder that exists, and the environment of a shell set up for the stack (its kubeconfig with the
 * stack's context current, its VAULT_ADDR) and the three commands (stack init, preview, up) to run from the
 * repository. The e2e run itself executes
 * those very lines (`checkTryIt`), so what is printed is what was run.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { PROJECT_DIR, stackFileConfig } from "../../stacks/stack-file";
import { run } from "../common";
import { withSettings } from "../render/main";
import { cliEnv } from "./clients/pulumi";
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
  const home = path.join(root, "pulumi-home");
  for (const d of [dir, state, home]) fs.mkdirSync(d, { recursive: true });
  fs.copyFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  const stackFile = path.join(dir, `Pulumi.${stack}.yaml`);
  // The stack pinned to this world (its Vault's address here), and the shell set up for it.
  const shell = world.shell(stack);
  fs.writeFileSync(stackFile, withOverrides(stack, { ...overrides, ...shell.overrides }));
  const policy = "--policy-pack policy";
  return {
    stack,
    bin,
    env: {
      KUBECONFIG: shell.env.KUBECONFIG,
      VAULT_ADDR: shell.env.VAULT_ADDR,
      VAULT_TOKEN: world.vaultToken,
      ...cliEnv(state, home),
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
 * `Pulumi.<stack>.yaml` with `overrides` set (`section.key.path` -> value, as `pulumi config set --path` and
 * the render's `--set` take them: {@link withSettings}), as YAML. Comments do not survive.
 */
export function withOverrides(stack: string, overrides: Readonly<Record<string, string>>): string {
  const config = withSettings(stackFileConfig(stack), overrides);
  const value = (v: string): unknown => {
    try {
      return JSON.parse(v) as unknown; // a section or a number: stackFileConfig JSON-encodes them
    } catch {
      return v; // a plain string setting
    }
  };
  return yaml.dump(
    { config: Object.fromEntries(Object.entries(config).map(([k, v]) => [k, value(v)])) },
    { lineWidth: -1 },
  );
}

/** `export` lines of `env`, each value single-quoted for the shell. */
export function exportLines(env: Readonly<Record<string, string>>): string[] {
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  return Object.entries(env).map(([k, v]) => `export ${k}=${quote(v)}`);
}

/** The lines a shell needs: the exports, then the commands (the first `upTo` of them). */
export function tryScript(t: TryIt, upTo = t.commands.length): string[] {
  return [`export PATH="$PATH:${t.bin}"`, ...exportLines(t.env), ...t.commands.slice(0, upTo)];
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
