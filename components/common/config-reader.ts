/**
 * A small typed reader over untyped stack config (`config.requireObject` checks nothing). Every read names
 * its full key, so an error says exactly which setting is wrong, what it was and what is allowed. Errors
 * are collected, not thrown one by one, so a bad stack file is reported whole in a single run.
 */

/** One refused setting. */
export interface ConfigIssue {
  /** Full key as written in `Pulumi.<stack>.yaml`, e.g. `clipper-pgbouncer:pool.defaultPoolSize`. */
  readonly key: string;
  readonly message: string;
}

/** Thrown when stack settings are refused; nothing has been registered at that point. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(
      `invalid stack configuration (${issues.length} ${issues.length === 1 ? "problem" : "problems"}):\n` +
        issues.map((i) => `  - ${i.key}: ${i.message}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

/** Collects issues across many readers; `throwIfAny` ends validation. */
export class IssueList {
  private readonly list: ConfigIssue[] = [];
  private readonly keys = new Set<string>();
  /** Records that a setting was read (for the docs check: every setting the program reads is documented). */
  noteRead(key: string): void {
    this.keys.add(key);
  }
  /** Every setting key read so far, sorted. */
  get readKeys(): string[] {
    return [...this.keys].sort();
  }
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

export function show(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

interface IntRule {
  readonly min: number;
  readonly max: number;
}

/**
 * Reads one object of settings. `key` is the full dotted key of that object; each accessor takes the field
 * name and a default, which applies when the field is absent (never when it is present but wrong).
 */
export class ConfigReader {
  private readonly raw: Record<string, unknown>;
  private readonly seen = new Set<string>();

  constructor(
    readonly key: string,
    raw: unknown,
    readonly issues: IssueList,
  ) {
    if (raw === undefined || raw === null) {
      this.raw = {};
    } else if (isPlainObject(raw)) {
      this.raw = raw;
    } else {
      this.raw = {};
      issues.add(key, `must be an object, got ${show(raw)}`);
    }
  }

  private full(field: string): string {
    return `${this.key}.${field}`;
  }

  private get(field: string): unknown {
    this.seen.add(field);
    this.issues.noteRead(this.full(field));
    return this.raw[field];
  }

  /** A nested object, read with its own reader. */
  child(field: string): ConfigReader {
    return new ConfigReader(this.full(field), this.get(field), this.issues);
  }

  /** Whether the stack file sets `field` at all. */
  has(field: string): boolean {
    return this.raw[field] !== undefined;
  }

  int(field: string, def: number | undefined, rule: IntRule): number {
    const v = this.get(field);
    if (v === undefined) {
      if (def === undefined) {
        this.issues.add(this.full(field), `is required (an integer from ${rule.min} to ${rule.max})`);
        return rule.min;
      }
      return def;
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v < rule.min || v > rule.max) {
      this.issues.add(this.full(field), `is ${show(v)}; must be an integer from ${rule.min} to ${rule.max}`);
      return def ?? rule.min;
    }
    return v;
  }

  optionalInt(field: string, rule: IntRule): number | undefined {
    return this.has(field) ? this.int(field, undefined, rule) : (this.get(field) as undefined);
  }

  bool(field: string, def: boolean): boolean {
    const v = this.get(field);
    if (v === undefined) return def;
    if (typeof v !== "boolean") {
      this.issues.add(this.full(field), `is ${show(v)}; must be true or false`);
      return def;
    }
    return v;
  }

  /**
   * A non-empty string. `pattern` (with `what`, its description for the error) restricts the form;
   * `def` undefined makes the field required.
   */
  string(field: string, def: string | undefined, pattern?: RegExp, what?: string): string {
    const v = this.get(field);
    if (v === undefined) {
      if (def === undefined) {
        this.issues.add(this.full(field), `is required${what ? ` (${what})` : ""}`);
        return "";
      }
      return def;
    }
    if (typeof v !== "string" || v.trim() === "") {
      this.issues.add(
        this.full(field),
        `is ${show(v)}; must be a non-empty string${what ? ` (${what})` : ""}`,
      );
      return def ?? "";
    }
    if (pattern && !pattern.test(v)) {
      this.issues.add(this.full(field), `is ${show(v)}; must be ${what ?? `a string matching ${pattern}`}`);
      return def ?? v;
    }
    return v;
  }

  oneOf<T extends string>(field: string, def: T, allowed: readonly T[]): T {
    const v = this.get(field);
    if (v === undefined) return def;
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      this.issues.add(
        this.full(field),
        `is ${show(v)}; must be one of ${allowed.map((a) => `"${a}"`).join(", ")}`,
      );
      return def;
    }
    return v as T;
  }

  /** A non-empty list of strings, each matching `pattern`; undefined when absent. */
  stringList(field: string, pattern: RegExp, what: string): string[] | undefined {
    const v = this.get(field);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== "string" || !pattern.test(x))) {
      this.issues.add(this.full(field), `is ${show(v)}; must be a non-empty list of ${what}`);
      return undefined;
    }
    return v as string[];
  }

  /** A map of Kubernetes label keys to values (a selector); at least one entry. */
  labels(field: string, def: Readonly<Record<string, string>>): Record<string, string> {
    const v = this.get(field);
    if (v === undefined) return { ...def };
    if (!isPlainObject(v) || Object.keys(v).length === 0) {
      this.issues.add(this.full(field), `is ${show(v)}; must be a non-empty map of label keys to values`);
      return { ...def };
    }
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v)) {
      if (!LABEL_KEY.test(k) || typeof val !== "string" || !LABEL_VALUE.test(val)) {
        this.issues.add(
          `${this.full(field)}.${k}`,
          `is ${show(val)}; label keys and values must be valid Kubernetes labels`,
        );
        continue;
      }
      out[k] = val;
    }
    return out;
  }

  /** Refuses fields the program does not know: a typo must not silently fall back to a default. */
  rejectUnknown(): void {
    for (const field of Object.keys(this.raw)) {
      if (!this.seen.has(field)) this.issues.add(this.full(field), "is not a known setting");
    }
  }
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** RFC 1123 label: Kubernetes namespace and Service names. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** RFC 1123 subdomain: host names. */
export const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A lower-case PostgreSQL identifier: PgBouncer and SQL take these unquoted (user and database names). */
export const PG_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** Kubernetes CPU and memory quantities as this program accepts them. */
export const CPU_QUANTITY = /^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$/;
export const MEMORY_QUANTITY = /^[1-9][0-9]*(Ki|Mi|Gi)$/;
