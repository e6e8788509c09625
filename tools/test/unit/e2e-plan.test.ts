/**
 * The e2e's plan, checked without a cluster: the runbook's Verify commands it runs for each stack, and the
 * impossible pool budget of step 7, derived from each stack's settings.
 */
import * as assert from "assert";
import { settingsPoolBudget } from "../../../components/pgbouncer";
import { verifyCommands } from "../../e2e/scenarios/runbook/verify-commands";
import { impossibleServerCap } from "../../e2e/scenarios/runbook/bad-input";
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

    it("step 7's server cap is the smallest that breaks the pool budget", () => {
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
