import { vaultReadsFor } from "../../components/credentials";
import { parseSettings, rawStackConfig } from "../../stacks/settings";
import { stackFileConfig } from "../../stacks/stack-file";
import type { VaultSource } from "../../tools/offline/engine";

/**
 * Vault answers for an offline run of `stack`: every key the stack reads, the user keys as `clipper_app`
 * (a valid PostgreSQL identifier), the others `pw-<key>`.
 */
export function vaultFor(stack: string): VaultSource {
  const reads = vaultReadsFor(parseSettings(rawStackConfig(stackFileConfig(stack))).credentials);
  return (mount: string, name: string) => {
    const read = reads.find((r) => r.mount === mount && r.name === name);
    return read && Object.fromEntries(read.keys.map((k) => [k, /user/.test(k) ? "clipper_app" : `pw-${k}`]));
  };
}
