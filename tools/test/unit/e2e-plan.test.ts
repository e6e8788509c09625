/**
 * The e2e's plan, checked without a cluster: the runbook's Verify commands it runs for each stack, and the
 * impossible pool budget of step 7, derived from each stack's settings.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { DESTROY_GUARD_HOOK, DESTROY_GUARD_MESSAGE } from "../../../components/backend-route";
import { PROJECT_DIR } from "../../../stacks/stack-file";
import { PROTECTED_WORDS, REFUSED_DESTROY_WORDS } from "../../e2e/scenarios/runbook/destroy";
import { settingsPoolBudget } from "../../../components/pgbouncer";
import {
  VERIFY_BLOCKS,
  classify,
  fleetVerifyScripts,
  verifyBlocks,
  verifyCommands,
} from "../../e2e/scenarios/runbook/verify-commands";
import { unrenderedLive } from "../../e2e/scenarios/runbook/offline-render-matches";
import { urnTypeAndName } from "../../e2e/scenarios/runbook/stack-run";
import type { KubeObject } from "../../e2e/clients/kubectl";
import {
  impossibleServerCap,
  programError,
  stackVaultMaxRetries,
  vaultRetryWaitBound,
} from "../../e2e/scenarios/runbook/bad-input";
import { loadStackSettings } from "../../../stacks/settings";

for (const stack of ["prod", "staging"]) {
  describe(`e2e plan, stack ${stack}`, () => {
    const s = loadStackSettings(stack);

    it("runs the runbook's Verify commands in the stack's namespace, with the values they promise", () => {
      const cmds = verifyCommands(stack, s);
      assert.ok(cmds.length >= 8, JSON.stringify(cmds));
      for (const c of cmds) {
        if (c.command.startsWith("kubectl"))
          assert.match(c.command, new RegExp(`^kubectl -n ${s.namespace} `));
        if (c.command.startsWith("pulumi")) assert.ok(c.command.includes(`--stack ${stack} `), c.command);
      }
      const expects = cmds.map((c) => c.expect).filter((e) => e !== undefined);
      const host = `pgbouncer.${s.namespace}.svc.cluster.local`;
      assert.deepStrictEqual(expects, [
        "pgbouncer",
        host,
        String(s.workload.port),
        `${host}:${s.workload.port}`,
        `pgbouncer/${host}:${s.workload.port}`,
      ]);
    });

    it("runs the Verify block of the pooler from the inside on the fleet: the port-forward's port replaced, the rest as printed", () => {
      const [script, ...more] = fleetVerifyScripts(stack, s, 45678);
      assert.deepStrictEqual(more, []);
      assert.doesNotMatch(script, /port-forward|16432/);
      assert.match(script, /host=127\.0\.0\.1 port=45678 dbname=pgbouncer user=pgbouncer_exporter/);
      assert.ok(script.includes(`-field=exporter_password ${s.credentials.vaultPath})`), script);
    });

    it("bad-input's server cap is the smallest that breaks the pool budget", () => {
      const cap = impossibleServerCap(s);
      const at = (maxDbConnections: number) =>
        settingsPoolBudget({ ...s, pool: { ...s.pool, maxDbConnections } }).fits;
      assert.strictEqual(at(cap), false);
      assert.strictEqual(at(cap - 1), true);
      assert.ok(
        cap <= s.pool.maxClientConn,
        "only the budget is broken, not maxClientConn >= maxDbConnections",
      );
    });
  });
}

describe("e2e plan: the runbook answers a refused destroy", () => {
  const runbook = fs.readFileSync(path.join(PROJECT_DIR, "docs", "runbook.md"), "utf8");
  const section = runbook.slice(
    runbook.indexOf("## Decommission"),
    runbook.indexOf("\n## ", runbook.indexOf("## Decommission") + 1),
  );

  it("quotes what the engine prints for the guard hook, and the guard's own message", () => {
    for (const words of [
      ...REFUSED_DESTROY_WORDS,
      `before hook "${DESTROY_GUARD_HOOK}" failed: ${DESTROY_GUARD_MESSAGE}`,
    ]) {
      assert.ok(section.includes(words), `Decommission quotes: ${words}`);
    }
  });

  it("quotes Pulumi's protected-resource message and says why not to unprotect", () => {
    for (const words of PROTECTED_WORDS) assert.ok(section.includes(words), `Decommission quotes: ${words}`);
    assert.match(section, /`pulumi state unprotect` lifts the flag and nothing else/);
  });
});

describe("e2e plan: a failed preview's message, as step 7 reads it", () => {
  const diagnostics = (...lines: string[]) =>
    [
      "Previewing update (prod):",
      "",
      "Diagnostics:",
      "  pulumi:pulumi:Stack (clipper-pgbouncer-prod):",
      ...lines,
      "",
      "Resources:",
      "    1 errored",
    ].join("\n");
  const message = [
    "    error: invalid stack configuration (1 problem):",
    "      - clipper-pgbouncer:pool.maxDbConnections: is 61",
  ];

  it("is the one error's text, its continuation lines without the CLI's indent", () => {
    assert.strictEqual(
      programError(diagnostics("    warning: using pulumi-resource-vault from $PATH", ...message)),
      "invalid stack configuration (1 problem):\n  - clipper-pgbouncer:pool.maxDbConnections: is 61",
    );
  });

  it("refuses a stack trace, an unhandled exception, a second error, or no diagnostics", () => {
    assert.throws(
      () => programError(diagnostics(...message, "        at Stack.run (/x/run.ts:12:3)")),
      /stack trace/,
    );
    assert.throws(
      () => programError(diagnostics("    error: Running program '/x' failed with an unhandled exception:")),
      /unhandled exception/,
    );
    assert.throws(
      () => programError(diagnostics(...message, "    error: update failed")),
      /one error, not 2/,
    );
    assert.throws(() => programError("error: nothing else"), /diagnostics/);
  });
});

describe("e2e plan: an unreachable Vault's preview may take the provider's retry waits more", () => {
  it("takes the stacks' retries from the Vault SDK: its default 2 (the runbook's), or VAULT_MAX_RETRIES", () => {
    const saved = process.env.VAULT_MAX_RETRIES;
    try {
      delete process.env.VAULT_MAX_RETRIES;
      assert.strictEqual(stackVaultMaxRetries(), 2);
      process.env.VAULT_MAX_RETRIES = "4";
      assert.strictEqual(stackVaultMaxRetries(), 4);
    } finally {
      if (saved === undefined) delete process.env.VAULT_MAX_RETRIES;
      else process.env.VAULT_MAX_RETRIES = saved;
    }
  });

  it("adds k x 1.5 s before the k-th retry, nothing with no retries", () => {
    assert.strictEqual(vaultRetryWaitBound(0), 0);
    assert.strictEqual(vaultRetryWaitBound(1), 1.5);
    assert.strictEqual(vaultRetryWaitBound(2), 4.5);
    // Measured with VAULT_MAX_RETRIES 2 and 4: 3.8 s and 11.4 s more than with 0.
    assert.ok(3.8 <= vaultRetryWaitBound(2) && 11.4 <= vaultRetryWaitBound(4));
  });
});

describe("e2e plan: every block of the runbook's Verify runs, or says why not", () => {
  it("knows each block, and gives a reason for each it does not run", () => {
    const blocks = verifyBlocks();
    assert.ok(blocks.length >= 4, `${blocks.length} blocks`);
    assert.deepStrictEqual(
      blocks.map((b) => classify(b).runs),
      VERIFY_BLOCKS.map((b) => b.runs),
      "each block known, in the runbook's order",
    );
    for (const b of VERIFY_BLOCKS.filter((x) => x.runs === "not"))
      assert.ok((b.why ?? "").length > 40, b.startsWith);
  });

  it("refuses a block it does not know", () => {
    assert.throws(
      () => classify("kubectl -n clipper get pods --watch"),
      /none the e2e knows: add it to VERIFY_BLOCKS/,
    );
  });
});

describe("e2e plan: the render comparison goes both ways", () => {
  const obj = (kind: string, name: string): KubeObject => ({
    apiVersion: "v1",
    kind,
    metadata: { name, namespace: "clipper", uid: name, resourceVersion: "1" },
  });

  it("reports a live object of the pooler that no rendered manifest was paired with", () => {
    const paired = [obj("ConfigMap", "pgbouncer-config"), obj("Secret", "pgbouncer-exporter-abc12345")];
    assert.deepStrictEqual(unrenderedLive(paired, paired), []);
    assert.deepStrictEqual(
      unrenderedLive(paired, [...paired, obj("Secret", "pgbouncer-exporter-old12345")]),
      ["Secret/pgbouncer-exporter-old12345: in the cluster, not in the render"],
    );
  });
});

describe("e2e plan: what a preview plans, by type and name", () => {
  it("reads a child's type and name from its URN", () => {
    assert.deepStrictEqual(
      urnTypeAndName(
        "urn:pulumi:prod::clipper-pgbouncer::clipper:pgbouncer:PgBouncer$kubernetes:core/v1:Secret::pgbouncer-auth",
      ),
      { type: "kubernetes:core/v1:Secret", name: "pgbouncer-auth" },
    );
  });
});
