/**
 * The README's "Try it", checked without a cluster: what `--world-only --keep` writes for each stack (the
 * project file, the stack file copy with the e2e's overrides, a backend folder that exists), the commands it
 * prints, and that the README shows those very commands. The e2e runs them on the real CLI.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { PROJECT_DIR, stackFileConfig } from "../../../stacks/stack-file";
import type { World } from "../../e2e/context";
import { E2E_OVERRIDES } from "../../e2e/main";
import { prepareTry, tryScript, withOverrides } from "../../e2e/try-it";

function fakeWorld(dir: string): World {
  const none = () => Promise.reject(new Error("no cluster in a unit test"));
  return {
    dir,
    kubeconfig: path.join(dir, "admin.kubeconfig"),
    vaultAddr: "http://127.0.0.1:8200",
    vaultToken: "root",
    env: {
      PATH: "/usr/bin",
      KUBECONFIG: path.join(dir, "admin.kubeconfig"),
      VAULT_ADDR: "http://127.0.0.1:8200",
    },
    kubectl: none,
    kubectlRaw: none,
    local: { kube: true, vault: true },
    shell: (stack) => {
      const vaultAddr = stack === "prod" ? "http://127.0.0.1:8200" : "http://localhost:8200";
      return {
        env: { PATH: "/usr/bin", KUBECONFIG: path.join(dir, `${stack}.kubeconfig`), VAULT_ADDR: vaultAddr },
        overrides: { "providers.vaultAddress": vaultAddr },
        context: `clipper-${stack}`,
        vaultAddr,
      };
    },
    stop: () => Promise.resolve(),
    keep: () => {
      throw new Error("not here");
    },
  };
}

describe("the README's Try it (--world-only --keep)", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-try-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("withOverrides sets the e2e's overrides and keeps every other setting", () => {
    const text = fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.prod.yaml"), "utf8");
    const out = yaml.load(
      withOverrides("prod", { "monitoring.dashboard": "false", "pool.defaultPoolSize": "40" }),
    ) as {
      config: Record<string, Record<string, unknown>>;
    };
    const before = yaml.load(text) as { config: Record<string, Record<string, unknown>> };
    assert.strictEqual(out.config["clipper-pgbouncer:monitoring"].dashboard, false);
    assert.strictEqual(out.config["clipper-pgbouncer:pool"].defaultPoolSize, 40);
    const without = (c: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(c).filter(([k]) => !/:(monitoring|pool)$/.test(k)));
    assert.deepStrictEqual(without(out.config), without(before.config));
    const pool = out.config["clipper-pgbouncer:pool"];
    const poolBefore = before.config["clipper-pgbouncer:pool"];
    assert.deepStrictEqual({ ...pool, defaultPoolSize: poolBefore.defaultPoolSize }, poolBefore);
  });

  for (const stack of ["prod", "staging"]) {
    it(`${stack}: the folder, the stack file copy and a backend folder that exists`, () => {
      const t = prepareTry(fakeWorld(dir), "/opt/toolchain/bin", stack, E2E_OVERRIDES);
      const folder = path.join(dir, "try", stack);
      assert.strictEqual(
        fs.readFileSync(path.join(folder, "Pulumi.yaml"), "utf8"),
        fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), "utf8"),
      );
      const copy = stackFileConfig(stack, folder);
      const original = stackFileConfig(stack);
      assert.strictEqual(JSON.parse(copy["clipper-pgbouncer:monitoring"] ?? "{}").dashboard, false);
      const shell = fakeWorld(dir).shell(stack);
      const providers = JSON.parse(copy["clipper-pgbouncer:providers"] ?? "{}") as Record<string, string>;
      assert.strictEqual(providers.vaultAddress, shell.vaultAddr, "pinned to this world's Vault");
      assert.strictEqual(
        providers.kubernetesContext,
        JSON.parse(original["clipper-pgbouncer:providers"]).kubernetesContext,
        "the stack's own context, which the local world's kubeconfig has",
      );
      for (const [k, v] of Object.entries(original)) {
        if (!/:(monitoring|providers)$/.test(k)) assert.strictEqual(copy[k], v, k);
      }
      const backend = t.env.PULUMI_BACKEND_URL.replace(/^file:\/\//, "");
      assert.ok(fs.statSync(backend).isDirectory(), "the backend folder exists before stack init");
      assert.strictEqual(t.env.VAULT_ADDR, shell.vaultAddr);
      assert.strictEqual(t.env.KUBECONFIG, shell.env.KUBECONFIG, "the shell set up for the stack");
      assert.ok(t.env.PULUMI_CONFIG_PASSPHRASE, "the passphrase is exported");
      assert.deepStrictEqual(
        t.commands.map((c) => c.split(" ").slice(0, 2).join(" ")),
        ["pulumi stack", "pulumi preview", "pulumi up"],
      );
      const script = tryScript(t, 1);
      assert.ok(
        script.some((l) => l.startsWith("export PULUMI_BACKEND_URL='file://")),
        script.join("\n"),
      );
      assert.strictEqual(script[script.length - 1], t.commands[0]);
      assert.strictEqual(
        script[0],
        'export PATH="$PATH:/opt/toolchain/bin"',
        "the shell's own PATH, then the toolchain",
      );
    });
  }

  it("the README shows the commands it prints, <dir> for the world's folder", () => {
    const readme = fs.readFileSync(path.join(PROJECT_DIR, "README.md"), "utf8");
    const t = prepareTry(fakeWorld(dir), "/opt/toolchain/bin", "prod", E2E_OVERRIDES);
    for (const c of t.commands) {
      const shown = c.split(dir).join("<dir>");
      assert.ok(readme.includes(shown), `README.md shows: ${shown}`);
    }
    assert.ok(readme.includes("npm run e2e -- --world-only --keep"));
  });
});
