import * as assert from "node:assert/strict";
import * as util from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../../components/common";
import { CREDENTIAL_DEFAULTS, VaultCredentialError, buildCredentials } from "../../components/credentials";
import { UNEXPECTED_ERROR, runError } from "../../stacks/run-error";
import { parseSettings } from "../../stacks/settings";
import { stackFileConfig, rawStackConfig } from "../../stacks/stack-file";

/** A stack frame line as V8 writes it. */
const FRAME = /\n\s+at /;

function thrownBy(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  assert.fail("expected an error");
}

describe("runError: how the program's entry ends when it cannot deploy", () => {
  it("a refused setting: one RunError with the ConfigError's message, naming the key, and no stack", () => {
    const raw = rawStackConfig(stackFileConfig("prod"));
    raw.pool = { ...(raw.pool as Record<string, unknown>), maxDbConnections: 500 };
    const e = thrownBy(() => parseSettings(raw));
    assert.ok(e instanceof ConfigError, String(e));
    const r = runError(e);
    assert.ok(pulumi.RunError.isInstance(r));
    assert.equal(r.message, e.message);
    assert.match(
      r.message,
      /^invalid stack configuration \(1 problem\):\n {2}- clipper-pgbouncer:pool\.maxDbConnections: is 500; the pool budget does not fit PostgreSQL/,
    );
    assert.doesNotMatch(r.message, FRAME);
    assert.ok(!r.message.includes("ConfigError"), r.message);
    assert.equal(r.stack, `Error: ${r.message}`);
  });

  it("a refused Vault value: one RunError naming mount, path and key, and no stack", () => {
    const e = thrownBy(() =>
      buildCredentials(
        CREDENTIAL_DEFAULTS,
        { statsUser: "pgbouncer_exporter", pgbouncerPort: 6432 },
        { data: { app_user: "clipper_app", app_password: "app-Pa55word" } },
      ),
    );
    assert.ok(e instanceof VaultCredentialError, String(e));
    const r = runError(e);
    assert.ok(pulumi.RunError.isInstance(r));
    assert.equal(
      r.message,
      "PgBouncer credentials refused (1 problem):\n" +
        `  - Vault KV v2 mount "secret" path "clipper/pgbouncer" key "exporter_password" ` +
        "(credentials.statsPasswordKey): is missing from the secret (keys present: app_password, app_user)",
    );
  });

  it("a bug: a RunError that still shows the original error and its stack", () => {
    const bug = thrownBy(() => (undefined as unknown as { x: number }).x);
    const r = runError(bug);
    assert.ok(pulumi.RunError.isInstance(r));
    const [first, second] = r.message.split("\n");
    assert.equal(first, UNEXPECTED_ERROR);
    assert.match(second, /^TypeError: Cannot read properties of undefined/);
    assert.match(r.message, FRAME);
    assert.ok(r.message.includes("run-error.test.ts"), r.message);
  });

  it("something thrown that is not an Error is shown as it is", () => {
    assert.equal(runError("plain string").message, `${UNEXPECTED_ERROR}\nplain string`);
  });

  it("a RunError passes, its stack cut to its first line", () => {
    const e = new pulumi.RunError("already clear");
    assert.equal(runError(e), e);
    assert.equal(e.stack, "Error: already clear");
  });

  it("gives the SDK nothing that Node.js 22 colours for half a minute (nodejs/node#64011)", () => {
    // The frame every error thrown from the entry has, as the SDK's source maps name it. The SDK formats whatever
    // it catches with util.inspect(err, { colors: true }), and Node 22.23 (as 20.20) loops on that frame until RangeError.
    const sdkFrame =
      "    at async Stack.initializeAndRegisterOutputs (/work/node_modules/@pulumi/resource.ts:1598:22)";
    const refused = new pulumi.RunError("invalid stack configuration (1 problem)");
    refused.stack = `Error: ${refused.message}\n    at runError (/work/stacks/run-error.ts:25:77)\n${sdkFrame}`;
    const bug = new TypeError("boom");
    bug.stack = `TypeError: boom\n    at deployEnvironment (/work/stacks/environment.ts:50:23)\n${sdkFrame}`;
    for (const e of [refused, bug]) {
      const started = Date.now();
      const shown = util.inspect(runError(e), { colors: true });
      assert.ok(Date.now() - started < 1000, `util.inspect took ${Date.now() - started} ms`);
      assert.ok(!shown.includes("\n    at runError"), shown);
    }
  });
});
