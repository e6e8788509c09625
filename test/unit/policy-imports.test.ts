/**
 * The policy pack loads only pure modules: the CLI loads it at every `pulumi preview --policy-pack policy`,
 * and through a Pulumi component it would load (and once type-checked) the providers' SDKs too. It imports
 * the concerns through their pure barrels (`components/<concern>/index.ts`) and the stack files' module, and
 * keeps off the monitoring barrel too, whose dashboard renderer loads Grafana's dashboard SDK.
 */
import * as assert from "assert";
import {
  PROVIDER_SDKS,
  packageImports,
  providerImports,
  reachable,
  relativeImports,
} from "../support/imports";

const PACK = ["policy/index.ts", "policy/policies.ts", "policy/resources.ts"];
const ALLOWED_ENTRY = /^(components\/[a-z-]+\/index\.ts|stacks\/stack-file\.ts|policy\/[a-z-]+\.ts)$/;

describe("the policy pack's imports", () => {
  const files = [...reachable("policy/index.ts")];

  it("reach the pure modules it needs (the check can fail: it sees through the barrels)", () => {
    for (const f of [
      "stacks/stack-file.ts",
      "components/pgbouncer/index.ts",
      "components/pgbouncer/budget.ts",
      "components/credentials/secrets.ts",
    ]) {
      assert.ok(files.includes(f), `${f} not in:\n${files.join("\n")}`);
    }
    // The same walk from the program's environment finds its resources and their SDKs.
    const program = [...reachable("stacks/environment.ts")];
    assert.ok(program.includes("components/pgbouncer/resources.ts"));
    assert.ok(program.some((f) => providerImports(f).includes("@pulumi/kubernetes")));
  });

  it("enter the product only through pure barrels and the stack files' module", () => {
    for (const f of PACK) assert.ok(files.includes(f), f);
    const entries = PACK.flatMap((f) => relativeImports(f).map((t) => `${f} -> ${t}`));
    assert.deepStrictEqual(
      entries.filter((e) => !ALLOWED_ENTRY.test(e.split(" -> ")[1])),
      [],
    );
  });

  it("reach no component, no resource entry, no provider SDK and no dashboard SDK", () => {
    assert.deepStrictEqual(
      files.filter((f) => /(^|\/)(component|resources)\.ts$/.test(f) && !f.startsWith("policy/")),
      [],
    );
    assert.deepStrictEqual(
      files.flatMap((f) =>
        packageImports(f)
          .filter((p) => [...PROVIDER_SDKS, "@grafana/grafana-foundation-sdk"].includes(p))
          .map((p) => `${f} imports ${p}`),
      ),
      [],
    );
  });
});
