/**
 * The one `--name value` / `--name=value` / `--flag` parser of every tool's command line; an option given
 * twice keeps its last value (or all of them: {@link Args.all}); unknown options are refused.
 */
export class Args {
  private readonly values = new Map<string, string | true>();
  private readonly repeated = new Map<string, (string | true)[]>();
  private readonly used = new Set<string>();

  constructor(argv: readonly string[]) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (!a.startsWith("--")) throw new UsageError(`unexpected argument "${a}"`);
      const eq = a.indexOf("=");
      const [name, value]: [string, string | true] =
        eq > 0
          ? [a.slice(2, eq), a.slice(eq + 1)]
          : i + 1 < argv.length && !argv[i + 1].startsWith("--")
            ? [a.slice(2), argv[++i]]
            : [a.slice(2), true];
      this.values.set(name, value);
      this.repeated.set(name, [...(this.repeated.get(name) ?? []), value]);
    }
  }

  /** Every value of an option that may be given several times (`--set a=1 --set b=2`). */
  all(name: string): string[] {
    this.used.add(name);
    return (this.repeated.get(name) ?? []).map((v) => {
      if (v === true) throw new UsageError(`--${name} needs a value`);
      return v;
    });
  }

  flag(name: string): boolean {
    this.used.add(name);
    const v = this.values.get(name);
    if (v === undefined) return false;
    if (v !== true) throw new UsageError(`--${name} takes no value`);
    return true;
  }

  string(name: string, def?: string): string {
    this.used.add(name);
    const v = this.values.get(name);
    if (v === undefined) {
      if (def === undefined) throw new UsageError(`--${name} is required`);
      return def;
    }
    if (v === true) throw new UsageError(`--${name} needs a value`);
    return v;
  }

  optional(name: string): string | undefined {
    return this.values.has(name) ? this.string(name) : (this.used.add(name), undefined);
  }

  int(name: string, def: number, min: number, max: number): number {
    const raw = this.string(name, String(def));
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new UsageError(`--${name} is "${raw}"; must be an integer from ${min} to ${max}`);
    }
    return v;
  }

  list(name: string, def: readonly number[], min: number, max: number): number[] {
    const raw = this.string(name, def.join(","));
    const vs = raw.split(",").map(Number);
    if (vs.some((v) => !Number.isInteger(v) || v < min || v > max)) {
      throw new UsageError(`--${name} is "${raw}"; must be integers from ${min} to ${max}, comma separated`);
    }
    return vs;
  }

  oneOf<T extends string>(name: string, def: T, allowed: readonly T[]): T {
    const v = this.string(name, def);
    if (!(allowed as readonly string[]).includes(v)) {
      throw new UsageError(`--${name} is "${v}"; must be one of ${allowed.join(", ")}`);
    }
    return v as T;
  }

  /** Call after reading every option: refuses options nobody read (a typo must not be ignored). */
  done(): void {
    const unknown = [...this.values.keys()].filter((k) => !this.used.has(k));
    if (unknown.length) throw new UsageError(`unknown option(s): ${unknown.map((u) => `--${u}`).join(", ")}`);
  }
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Runs a command's main, printing usage errors with the usage text (exit 2) and failures (exit 1). */
export function runMain(usage: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof UsageError) {
        process.stderr.write(`error: ${e.message}\n\n${usage}\n`);
        process.exit(2);
      }
      // a stack trace only where it helps: CLIPPER_DEBUG=1
      const text =
        e instanceof Error ? (process.env.CLIPPER_DEBUG ? (e.stack ?? e.message) : e.message) : String(e);
      process.stderr.write(`error: ${text}\n`);
      process.exit(1);
    },
  );
}
