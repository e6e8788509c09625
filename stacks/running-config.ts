/**
 * The running stack's config as the Pulumi CLI hands it to the program: the raw settings, and which of the
 * project's config keys hold Pulumi secrets. `pulumi.runtime.allConfig()` gives every value as plain text,
 * secret or not; which keys are secret only `pulumi.runtime.isConfigSecret` says (per top-level key: a
 * section with one secret field is secret as a whole).
 */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_NAMESPACE, rawStackConfig } from "./stack-file";

export interface RunningStackConfig {
  /** Every `clipper-pgbouncer:*` value, JSON-decoded (see `rawStackConfig`). */
  readonly raw: Record<string, unknown>;
  /** The keys below `clipper-pgbouncer:` whose values are Pulumi secrets, e.g. `database`. */
  readonly secretSections: ReadonlySet<string>;
  /** The stack's config keys of other namespaces (`vault:address`, `pulumi:...`), by full key. */
  readonly otherKeys: readonly string[];
}

export function runningStackConfig(): RunningStackConfig {
  const all = pulumi.runtime.allConfig();
  const isSecret = configSecretTest();
  const prefix = `${CONFIG_NAMESPACE}:`;
  const secret = Object.keys(all).filter((k) => k.startsWith(prefix) && isSecret(k));
  return {
    raw: rawStackConfig(all),
    secretSections: new Set(secret.map((k) => k.slice(prefix.length))),
    otherKeys: Object.keys(all).filter((k) => !k.startsWith(prefix)),
  };
}

/**
 * `isConfigSecret` of the SDK's runtime: exported by `@pulumi/pulumi/runtime/config` but marked internal,
 * so absent from its typings. Without it the program cannot tell a secret setting from a plain one, so it
 * refuses to run rather than write a secret in plaintext (test/unit/running-config.test.ts fails first).
 */
export function configSecretTest(runtime: object = pulumi.runtime): (key: string) => boolean {
  const f = (runtime as { isConfigSecret?: unknown }).isConfigSecret;
  if (typeof f !== "function") {
    throw new Error(
      "@pulumi/pulumi's runtime has no isConfigSecret: the program cannot tell which settings are Pulumi " +
        "secrets, and does not run rather than risk writing one in plaintext",
    );
  }
  return (key) => (f as (k: string) => unknown)(key) === true;
}
