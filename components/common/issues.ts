/**
 * Refused settings, collected: every problem of a stack file is reported in one run, each naming its full
 * key, what it was and what is allowed.
 */

/** One refused setting. */
export interface ConfigIssue {
  /** Full key as written in `Pulumi.<stack>.yaml`, e.g. `clipper-pgbouncer:pool.defaultPoolSize`. */
  readonly key: string;
  readonly message: string;
}

/**
 * A refusal the person running the program fixes (a setting, a Vault value, an object the stack names, the
 * shell's cluster or Vault): its message names each key or object at fault, what was expected and what was
 * found, and the program prints it alone, without a stack (stacks/run-error.ts).
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Thrown when stack settings are refused; nothing has been registered at that point. */
export class ConfigError extends UserError {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(
      `invalid stack configuration (${issues.length} ${issues.length === 1 ? "problem" : "problems"}):\n` +
        issues.map((i) => `  - ${i.key}: ${i.message}`).join("\n"),
    );
  }
}

/** Collects issues across a whole stack's settings; `throwIfAny` ends validation. */
export class IssueList {
  private readonly list: ConfigIssue[] = [];
  add(key: string, message: string): void {
    this.list.push({ key, message });
  }
  get issues(): readonly ConfigIssue[] {
    return this.list;
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw new ConfigError(this.list);
  }
}

/** A setting's value as an error message quotes it: strings in quotes, anything else as JSON. */
export function show(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}
