/**
 * One Vault KV v2 secret, read key by key for the credential settings. Each problem is recorded with the
 * Vault mount, path and key and the setting that names the key; reading goes on, so that one run reports
 * every problem of the secret.
 */
import type { CredentialProblem } from "./problems";
import { type SecretKind, passwordProblem, secretKind } from "./secrets";
import type { CredentialSettings } from "./settings";

export class VaultSecretReader {
  readonly problems: CredentialProblem[] = [];
  /** The keys the secret holds, for the message about a missing one. */
  private readonly present: string[];

  constructor(
    private readonly at: Pick<CredentialSettings, "vaultMount" | "vaultPath">,
    private readonly data: Readonly<Record<string, string>>,
  ) {
    this.present = Object.keys(data).sort();
  }

  /** Records a problem with `key`, which the setting `setting` (below `credentials.`) names. */
  problem(key: string, setting: string, message: string): void {
    this.problems.push({ mount: this.at.vaultMount, path: this.at.vaultPath, key, setting, message });
  }

  /** The value of `key`, or undefined after recording why it is missing. */
  read(key: string, setting: string): string | undefined {
    const v = this.data[key];
    if (v === undefined) {
      const keys = this.present.length ? this.present.join(", ") : "none";
      this.problem(key, setting, `is missing from the secret (keys present: ${keys})`);
    }
    return v;
  }

  /**
   * A password the program itself must know: for the exporter, for PgBouncer's own login, or for the auth
   * file. `refusal` says why a verifier or hash will not do.
   */
  password(key: string, setting: string, refusal: (kind: SecretKind) => string): string | undefined {
    const v = this.read(key, setting);
    if (v === undefined) return undefined;
    if (v !== "" && secretKind(v) !== "password") {
      this.problem(key, setting, refusal(secretKind(v)));
      return undefined;
    }
    const bad = passwordProblem(v);
    if (bad) {
      this.problem(key, setting, bad);
      return undefined;
    }
    return v;
  }
}
