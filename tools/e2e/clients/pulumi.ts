/**
 * The real Pulumi CLI against one stack: a file backend in the world's folder, a passphrase, no update check,
 * no plugin downloads (the providers come from PATH), and the stack's config read from a temporary copy of
 * `Pulumi.<stack>.yaml` (`--config-file`), so `stack init` and `config set` never write to the stack files.
 * Each command is logged as it runs, its output streamed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../../stacks/stack-file";
import { secondsSince } from "../../common";

export interface PulumiResult {
  readonly code: number;
  /** stdout and stderr, interleaved as they came. */
  readonly output: string;
  readonly stdout: string;
  /** Wall time of the command. */
  readonly seconds: number;
}

export interface PulumiStack {
  readonly stack: string;
  /** The temporary copy of `Pulumi.<stack>.yaml` every command reads and `config set` writes. */
  readonly configFile: string;
  readonly backendUrl: string;
  /** The environment every command runs with (a shell running `pulumi` by hand needs the same). */
  readonly env: Readonly<NodeJS.ProcessEnv>;
  /** Runs `pulumi <args> --stack <stack>` (plus `--config-file` where the command takes it). */
  run(args: readonly string[], opts?: ExecOptions): Promise<PulumiResult>;
  /** Like `run`, throwing with the output's tail when the command fails. */
  ok(args: readonly string[], opts?: ExecOptions): Promise<PulumiResult>;
  /** `pulumi config set --path <key> <value>` (into the temporary copy). */
  configSet(key: string, value: string): Promise<void>;
  /** `pulumi stack output --json --show-secrets`, parsed. */
  outputs(): Promise<Record<string, unknown>>;
}

export interface PulumiOptions {
  readonly stack: string;
  /** The `pulumi` binary. */
  readonly pulumi: string;
  /** A scratch folder for the backend, PULUMI_HOME and the config copies. */
  readonly dir: string;
  /** KUBECONFIG, VAULT_ADDR, VAULT_TOKEN and PATH of the world. */
  readonly env: Readonly<Record<string, string>>;
  readonly log: (line: string) => void;
}

/** Commands that take `--config-file`. */
const TAKES_CONFIG_FILE = new Set(["preview", "up", "destroy", "refresh", "config"]);

export const PASSPHRASE = "clipper-e2e-passphrase";

type ExecOptions = {
  quiet?: boolean;
  timeoutMs?: number;
  /** Replaces variables of the stack's environment for this command (e.g. a Vault that is not there). */
  env?: Readonly<Record<string, string>>;
};

/** Runs `pulumi <args>` in `cwd`, its output streamed (indented) unless quiet; killed after the timeout. */
type Exec = (args: readonly string[], cwd: string, o?: ExecOptions) => Promise<PulumiResult>;

/**
 * The Pulumi CLI's environment in this world (the e2e's commands, the README's Try it): a file backend in
 * `stateDir`, `PULUMI_HOME`, the passphrase, no update check, no plugin downloads (the providers come from
 * PATH), and the program transpiled only (`npm test` type-checks it; about 10 s less per command).
 */
export function cliEnv(stateDir: string, home: string): Record<string, string> {
  return {
    PULUMI_BACKEND_URL: `file://${stateDir}`,
    PULUMI_HOME: home,
    PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SUPPRESS_COPILOT_LINK: "true",
    PULUMI_NODEJS_TRANSPILE_ONLY: "true",
  };
}

/** Creates the stack in a fresh file backend and returns a runner bound to it. */
export async function pulumiStack(opts: PulumiOptions): Promise<PulumiStack> {
  const stateDir = path.join(opts.dir, "pulumi-state");
  const home = path.join(opts.dir, "pulumi-home");
  for (const d of [stateDir, home]) fs.mkdirSync(d, { recursive: true });
  const cli = cliEnv(stateDir, home);
  const backendUrl = cli.PULUMI_BACKEND_URL;
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, ...cli };
  const exec = streaming(opts, env);
  const configFile = await initStack(opts, exec);

  const withStack = (args: readonly string[]) => [
    ...args,
    "--stack",
    opts.stack,
    ...(TAKES_CONFIG_FILE.has(args[0]) ? ["--config-file", configFile] : []),
    "--non-interactive",
    "--color",
    "never",
  ];
  const run: PulumiStack["run"] = (args, o) => exec(withStack(args), PROJECT_DIR, o);
  const ok: PulumiStack["ok"] = async (args, o) => {
    const r = await run(args, o);
    if (r.code !== 0) {
      throw new Error(
        `pulumi ${args.join(" ")} exited ${r.code}:\n${r.output.split("\n").slice(-40).join("\n")}`,
      );
    }
    return r;
  };
  return {
    stack: opts.stack,
    configFile,
    backendUrl,
    env,
    run,
    ok,
    configSet: async (key, value) => {
      await ok(["config", "set", "--path", key, value]);
    },
    outputs: async () =>
      JSON.parse(
        (await ok(["stack", "output", "--json", "--show-secrets"], { quiet: true })).stdout,
      ) as Record<string, unknown>,
  };
}

/**
 * `pulumi stack init`, and the stack's config copy (`<dir>/pulumi-config/Pulumi.<stack>.yaml`) every
 * command reads; returns the copy's path. `stack init` writes the passphrase's `encryptionsalt` into
 * Pulumi.<stack>.yaml next to the Pulumi.yaml it finds: give it a scratch project of the same name, and
 * carry the salt over into the config copy.
 */
async function initStack(opts: PulumiOptions, exec: Exec): Promise<string> {
  const scratch = path.join(opts.dir, "pulumi-init", opts.stack);
  fs.mkdirSync(scratch, { recursive: true });
  fs.writeFileSync(path.join(scratch, "Pulumi.yaml"), fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.yaml")));
  const init = await exec(
    ["stack", "init", opts.stack, "--secrets-provider", "passphrase", "--non-interactive"],
    scratch,
  );
  if (init.code !== 0) throw new Error(`pulumi stack init ${opts.stack} failed:\n${init.output}`);
  const salt = /^encryptionsalt: .*$/m.exec(
    fs.readFileSync(path.join(scratch, `Pulumi.${opts.stack}.yaml`), "utf8"),
  );
  if (!salt) throw new Error(`pulumi stack init wrote no encryptionsalt for ${opts.stack}`);
  const configFile = path.join(opts.dir, "pulumi-config", `Pulumi.${opts.stack}.yaml`);
  fs.mkdirSync(path.dirname(configFile), { recursive: true });
  const original = fs.readFileSync(path.join(PROJECT_DIR, `Pulumi.${opts.stack}.yaml`), "utf8");
  fs.writeFileSync(configFile, `${salt[0]}\n${original}`);
  return configFile;
}

/**
 * The Pulumi CLI with its output streamed as it comes (a long `up` shows progress), which the buffered
 * runner of tools/common cannot do: each whole line goes to the log (indented), so that runs side by side
 * keep their lines apart. Logs each command and how it ended; `seconds` is its wall time.
 */
function streaming(opts: PulumiOptions, env: NodeJS.ProcessEnv): Exec {
  return (args, cwd, o = {}) =>
    new Promise<PulumiResult>((resolve) => {
      opts.log(`$ pulumi ${args.join(" ")}`);
      const started = Date.now();
      const child = spawn(opts.pulumi, [...args], {
        cwd,
        env: { ...env, ...o.env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      let stdout = "";
      const pending = { out: "", err: "" };
      // Whole lines go to the log; a partial one waits for its end, or for the command's (`last`).
      const flush = (which: "out" | "err", last: boolean) => {
        const lines = pending[which].split("\n");
        pending[which] = last ? "" : (lines.pop() ?? "");
        if (o.quiet) return;
        for (const line of last ? lines.filter((l) => l !== "") : lines) opts.log(`    ${line}`);
      };
      const take = (which: "out" | "err") => (d: Buffer) => {
        const s = d.toString();
        output += s;
        if (which === "out") stdout += s;
        pending[which] += s;
        flush(which, false);
      };
      child.stdout.on("data", take("out"));
      child.stderr.on("data", take("err"));
      const timer = setTimeout(() => child.kill("SIGTERM"), o.timeoutMs ?? 600_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        flush("out", true);
        flush("err", true);
        const seconds = (Date.now() - started) / 1000;
        opts.log(`  (pulumi ${args[0]} exited ${code} after ${secondsSince(started)})`);
        resolve({ code: code ?? 1, output, stdout, seconds });
      });
    });
}
