/**
 * Settings declared once. A section is an object literal of fields, and each field is one declaration
 * that gives the setting's type (inferred: `Infer`), its default, its validation, its key (the property
 * name below the section's key), its TSDoc (on the property, with `@default`) and what happens when its
 * value comes from a Pulumi secret (see {@link SecretUse}). Reading collects every problem, naming the full
 * key, the value and what is allowed, and goes on with the default, so that one run reports a whole stack
 * file; cross-field checks then run on what was read; unknown keys are refused by name.
 *
 * Adding a setting is one property in its section's schema, with its TSDoc (`@default` included) above
 * it, e.g. in the `pool` section of components/pgbouncer/settings.ts:
 *
 * ```ts
 * serverCheckDelaySeconds: int(0, 86400).default(30),
 * ```
 *
 * (from a secret, refused: the section writes it into pgbouncer.ini), then its row in docs/settings.md
 * (test/docs/settings.test.ts refuses a key or a default the tables do not match).
 */
import { IssueList, show } from "./issues";
import { LABEL_KEY, LABEL_VALUE } from "./patterns";

/** Whether a setting needs a value: `required` (no default), `default` (one applies), `optional` (absent stays absent). */
export type Presence = "required" | "default" | "optional";

/**
 * What the program does with a setting whose value comes from a Pulumi secret (`pulumi config set --secret
 * --path <section>.<field>`). Pulumi marks secrecy per top-level config key, so every value a section's
 * stack file entry sets counts as secret once one of them is (defaults do not: they come from the program).
 * - `plaintext`: the value is written where anyone who can read that object reads it (a ConfigMap, a pod
 *   spec, a NetworkPolicy, an alert rule): refused, naming the key and that place.
 * - `secret-input`: the value only goes into Pulumi resource inputs, which take it as `pulumi.secret`
 *   (encrypted in the state, masked in previews); see {@link SecretInputs}.
 * - `not-written`: the value is written into no resource input and no stack output (it is checked, or
 *   names where the program reads Vault): accepted as it is.
 * The settings' messages never quote a value from a secret key (`[secret]`); later ones (a failed Vault
 * read names its mount and path) rely on the Pulumi CLI, which masks every secret config value it prints.
 */
export type SecretUse =
  | { readonly kind: "plaintext"; readonly where: string }
  | { readonly kind: "secret-input" }
  | { readonly kind: "not-written" };

/** Where a value is read: its key, the problem list, and the secret config key it came from, if any. */
class At {
  constructor(
    /** Full key, e.g. `clipper-pgbouncer:tls.certificate.role`. */
    readonly key: string,
    /** The setting below the project's namespace, e.g. `tls.certificate.role`; "" for the stack itself. */
    readonly path: string,
    readonly issues: IssueList,
    /** The secret config key the value came from (`clipper-pgbouncer:tls`); undefined when not secret. */
    readonly secretKey: string | undefined,
    /** What a secret value becomes here, unless the field says otherwise. */
    readonly use: SecretUse | undefined,
    /** Settings (paths) from a secret key whose `use` is `secret-input`. */
    readonly marks: Set<string>,
    /** Every value read from a secret key, as messages would spell it: what {@link scrub} masks. */
    readonly secretValues: Set<string>,
  ) {}

  child(name: string, use: SecretUse | undefined = this.use, secretKey = this.secretKey): At {
    const root = this.path === "";
    return new At(
      `${this.key}${root ? ":" : "."}${name}`,
      root ? name : `${this.path}.${name}`,
      this.issues,
      secretKey,
      use,
      this.marks,
      this.secretValues,
    );
  }

  add(message: string): void {
    this.issues.add(this.key, message);
  }

  /** A value as a message quotes it; never a secret one. */
  show(value: unknown): string {
    return this.secretKey === undefined ? show(value) : "[secret]";
  }

  /**
   * A message a check wrote, with every value read from a secret key masked, as the Pulumi CLI masks its
   * output: a check quotes values of several settings, and cannot tell which are secret.
   */
  scrub(message: string): string {
    let out = message;
    for (const v of this.secretValues) {
      const escaped = v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      // Whole words only, so that a short value masks no more than it must (more is safe, less is not).
      out = out.replace(new RegExp(`(?<![A-Za-z0-9_])${escaped}(?![A-Za-z0-9_])`, "g"), "[secret]");
    }
    return out;
  }

  /** A leaf set from a secret config key: refused where it would be written in plaintext, else marked. */
  secretLeaf(raw: unknown, use: SecretUse | undefined): void {
    if (this.secretKey === undefined) return;
    const remember = (v: unknown): void => {
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") {
        if (String(v) !== "") this.secretValues.add(String(v));
      } else if (typeof v === "object" && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          if (!Array.isArray(v)) remember(k);
          remember(x);
        }
      }
    };
    remember(raw);
    if (use === undefined || use.kind === "plaintext") {
      this.add(
        `is a Pulumi secret (a value in ${this.secretKey} is set with --secret, which makes all of it ` +
          `secret), but ${use?.where ?? "a resource input"} would hold it in plaintext; set ` +
          `${this.secretKey} without --secret, or leave this setting out`,
      );
    } else if (use.kind === "secret-input") {
      this.marks.add(this.path);
    }
  }
}

/** How one kind of value is read (an integer, a label map, an object of fields, ...). */
export interface Kind<T> {
  /** A single value rather than an object of fields: secrecy is decided here. */
  readonly leaf: boolean;
  /** What `is required` says is expected, e.g. `an integer from 1 to 9`. */
  readonly requirement?: string;
  /** Stands in for a missing required value, so that the checks can run. */
  readonly missing: T;
  /** Reads a present value; on a problem, records it and returns `def` (or a stand-in). */
  read(raw: unknown, at: At, def: T | undefined): T;
  /** Reads an absent value itself (an object reads each field's default). */
  absent?(at: At): T;
  /** The fields below (an object's). */
  readonly fields?: Shape;
  /** The variants (see {@link variants}). */
  readonly variants?: { readonly tagField: string; readonly tag: AnyField; readonly cases: Cases };
  /** Copies a default, so that no caller shares it. */
  copy?(value: T): T;
}

type AnyField = Field<unknown, Presence>;
/** A section's fields: setting name to declaration. */
export type Shape = { readonly [name: string]: AnyField };

/** One setting: how it is read, whether it is required, its default and its secrecy. */
export class Field<T, P extends Presence = "required"> {
  /** The default, when `presence` is `default` and the kind has no reading of its own for absence. */
  readonly defaultValue: T | undefined = undefined;
  /** What a value from a Pulumi secret becomes; undefined: as the enclosing section says. */
  readonly use: SecretUse | undefined = undefined;
  /** The config key, when it differs from the property name. */
  readonly configKey: string | undefined = undefined;

  constructor(
    /** How its values are read. */
    readonly kind: Kind<T>,
    readonly presence: P,
  ) {}

  private with<F>(changes: Partial<Record<"presence" | "defaultValue" | "use" | "configKey", unknown>>): F {
    return Object.assign(Object.create(Object.getPrototypeOf(this) as object) as object, this, changes) as F;
  }

  /** Applies when the stack file leaves the setting out (never when it is present but wrong). */
  default(value: T): Field<T, "default"> {
    return this.with({ presence: "default", defaultValue: value });
  }

  /** May be left out, and then stays out of the settings. */
  optional(): Field<T, "optional"> {
    return this.with({ presence: "optional", defaultValue: undefined });
  }

  /** Written in plaintext to `where`: a value from a Pulumi secret is refused, naming `where`. */
  landsIn(where: string): this {
    return this.with({ use: { kind: "plaintext", where } });
  }

  /** Goes into resource inputs only: from a Pulumi secret, as `pulumi.secret` (see {@link SecretInputs}). */
  secretInput(): this {
    return this.with({ use: { kind: "secret-input" } });
  }

  /** Written into no resource input and no stack output: a value from a Pulumi secret is accepted. */
  notWritten(): this {
    return this.with({ use: { kind: "not-written" } });
  }

  /** Read from the config key `key` instead of the property's name. */
  fromKey(key: string): this {
    return this.with({ configKey: key });
  }

  /** The fields below this one (a section's). */
  get fields(): Shape | undefined {
    return this.kind.fields;
  }

  /** The variants this field is one of (see {@link variants}). */
  get variants(): Kind<T>["variants"] {
    return this.kind.variants;
  }

  /** @internal Reads the value at `at`; `raw` is undefined when the stack file leaves it out. */
  read(raw: unknown, at: At): T {
    if (raw === undefined) {
      if (this.kind.absent) return this.kind.absent(at);
      if (this.defaultValue !== undefined) {
        return this.kind.copy ? this.kind.copy(this.defaultValue) : this.defaultValue;
      }
      const req = this.kind.requirement;
      at.add(`is required${req ? ` (${req})` : ""}`);
      return this.kind.missing;
    }
    if (this.kind.leaf) at.secretLeaf(raw, at.use);
    return this.kind.read(raw, at, this.defaultValue);
  }
}

/** A section: an object of fields, with its own checks. */
export class Section<S extends Shape, T> extends Field<T, "default"> {
  constructor(
    kind: Kind<T>,
    readonly shape: S,
    /** @internal */ readonly options: SectionOptions<Infer<S>, T>,
  ) {
    super(kind, "default");
  }
}

/** The value type of a field. */
export type ValueOf<F> = F extends Field<infer T, Presence> ? T : never;
type KeysOf<S extends Shape, P extends Presence> = {
  [K in keyof S]: S[K] extends Field<unknown, P> ? K : never;
}[keyof S];
type Values<S extends Shape> = { readonly [K in keyof S]: ValueOf<S[K]> };
type Flat<T> = { [K in keyof T]: T[K] } & {};
/** The settings type of a section's fields: optional fields may be absent. */
export type Infer<S extends Shape> = Flat<
  Omit<Values<S>, KeysOf<S, "optional">> & Partial<Pick<Values<S>, KeysOf<S, "optional">>>
>;

/** `T` with the fields `K` made optional (their TSDoc kept). */
export type WithOptional<T, K extends keyof T> = Flat<Omit<T, K> & Partial<Pick<T, K>>>;

/** The problems a section's checks can see and record. */
export interface Checks {
  /** The full key of a field below this section (a dotted path), e.g. `clipper-pgbouncer:pool.minPoolSize`. */
  key(path: string): string;
  /** Records a problem with the field at `path` (a dotted path below this section). */
  add(path: string, message: string): void;
  /** Whether the stack file sets `field` of this section at all. */
  has(field: string): boolean;
}

export interface SectionOptions<V, T> {
  /**
   * Checks across the section's fields, after they are read (a refused field then holds its default or
   * stand-in, as the other checks see it).
   */
  readonly check?: (value: V, c: Checks) => void;
  /** Shapes the value the program gets, after the checks. */
  readonly finish?: (value: V) => T;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checksAt(at: At, raw: Readonly<Record<string, unknown>>): Checks {
  const find = (path: string) => (path === "" ? at : path.split(".").reduce((a, seg) => a.child(seg), at));
  return {
    key: (path) => find(path).key,
    add: (path, message) => find(path).add(at.scrub(message)),
    has: (field) => raw[field] !== undefined,
  };
}

/** Reads an object's raw value: absent or null is empty, anything else but an object is refused. */
function objectOf(raw: unknown, at: At): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (isPlainObject(raw)) return raw;
  at.add(`must be an object, got ${at.show(raw)}`);
  return {};
}

interface ReadObjectOptions {
  /** Keys that are known besides the fields (a variant's tag). */
  readonly alsoKnown?: readonly string[];
  /** The stack itself: unknown keys are listed against the known ones, and each key is its own secret. */
  readonly root?: { readonly secretSections: ReadonlySet<string> };
}

function readObject<S extends Shape, T>(
  shape: S,
  options: SectionOptions<Infer<S>, T>,
  raw: Record<string, unknown>,
  at: At,
  o: ReadObjectOptions = {},
): T {
  const out: Record<string, unknown> = {};
  const known: string[] = [...(o.alsoKnown ?? [])];
  for (const [name, field] of Object.entries<AnyField>(shape)) {
    const key = field.configKey ?? name;
    known.push(key);
    const value = raw[key];
    if (value === undefined && field.presence === "optional") continue;
    const secretKey = o.root
      ? o.root.secretSections.has(key)
        ? at.child(key).key
        : undefined
      : at.secretKey;
    out[name] = field.read(value, at.child(key, field.use ?? at.use, secretKey));
  }
  for (const key of Object.keys(raw)) {
    if (known.includes(key)) continue;
    at.child(key).add(
      o.root ? `is not a known setting (known: ${known.join(", ")})` : "is not a known setting",
    );
  }
  const value = out as Infer<S>;
  options.check?.(value, checksAt(at, raw));
  return options.finish ? options.finish(value) : (value as T);
}

// ---------------------------------------------------------------------------------------------------------
// The kinds of setting.

/**
 * A single value that `accept` tells valid; else `is <value>; must be <expected>` is recorded and the default
 * (or `missing`) stands in.
 */
function leaf<T>(expected: string, missing: T, accept: (v: unknown) => boolean): Field<T> {
  return new Field<T>(
    {
      leaf: true,
      requirement: expected,
      missing,
      read: (v, at, def) => {
        if (accept(v)) return v as T;
        at.add(`is ${at.show(v)}; must be ${expected}`);
        return def ?? missing;
      },
    },
    "required",
  );
}

/** An integer from `min` to `max`. */
export function int(min: number, max: number): Field<number> {
  const valid = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
  return leaf(`an integer from ${min} to ${max}`, min, valid);
}

/** `true` or `false`. */
export function bool(): Field<boolean> {
  return leaf("true or false", false, (v) => typeof v === "boolean");
}

/** A non-empty string; `pattern` (described by `what` in messages) restricts its form. */
export function string(pattern?: RegExp, what?: string): Field<string> {
  return new Field<string>(
    {
      leaf: true,
      ...(what ? { requirement: what } : {}),
      missing: "",
      read: (v, at, def) => {
        if (typeof v !== "string" || v.trim() === "") {
          at.add(`is ${at.show(v)}; must be a non-empty string${what ? ` (${what})` : ""}`);
          return def ?? "";
        }
        if (pattern && !pattern.test(v)) {
          at.add(`is ${at.show(v)}; must be ${what ?? `a string matching ${pattern}`}`);
          return def ?? v;
        }
        return v;
      },
    },
    "required",
  );
}

/** One of `allowed`. */
export function oneOf<const V extends readonly string[]>(allowed: V): Field<V[number]> {
  const list = allowed.map((a) => `"${a}"`).join(", ");
  return leaf<V[number]>(`one of ${list}`, allowed[0], (v) => typeof v === "string" && allowed.includes(v));
}

/** A map of Kubernetes label keys to values (a selector, or labels to set); at least one entry. */
export function labels(): Field<Readonly<Record<string, string>>> {
  return new Field<Readonly<Record<string, string>>>(
    {
      leaf: true,
      requirement: "a non-empty map of label keys to values",
      missing: {},
      copy: (d) => ({ ...d }),
      read: (v, at, def) => {
        if (!isPlainObject(v) || Object.keys(v).length === 0) {
          at.add(`is ${at.show(v)}; must be a non-empty map of label keys to values`);
          return { ...def };
        }
        const out: Record<string, string> = {};
        for (const [k, val] of Object.entries(v)) {
          if (LABEL_KEY.test(k) && typeof val === "string" && LABEL_VALUE.test(val)) out[k] = val;
          // A label key from a secret is not named either.
          else {
            const where = at.secretKey === undefined ? at.child(k) : at;
            where.add(`is ${at.show(val)}; label keys and values must be valid Kubernetes labels`);
          }
        }
        return out;
      },
    },
    "required",
  );
}

/** A non-empty list of strings, each matching `pattern` (described by `what`). */
export function stringList(pattern: RegExp, what: string): Field<readonly string[]> {
  const valid = (v: unknown) =>
    Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string" && pattern.test(x));
  return leaf<readonly string[]>(`a non-empty list of ${what}`, [], valid);
}

/**
 * A section of fields. Left out, every field takes its default (and a required one is reported); as a
 * setting it can be made `.optional()`, and then stays out of the settings when left out.
 */
export function section<S extends Shape, T = Infer<S>>(
  shape: S,
  options: SectionOptions<Infer<S>, T> = {},
): Section<S, NoInfer<T>> {
  const read = (raw: unknown, at: At) => readObject(shape, options, objectOf(raw, at), at);
  return new Section<S, T>(
    { leaf: false, missing: undefined as T, read, absent: (at) => read(undefined, at), fields: shape },
    shape,
    options,
  );
}

/** Any section, as a variant: its checks take their own value, so only `never` stands for all of them. */
type AnySection = Field<unknown, "default"> & {
  readonly shape: Shape;
  readonly options: SectionOptions<never, unknown>;
};
type Cases = Readonly<Record<string, AnySection>>;

/** The value of {@link variants}: one object per tag, with the tag under `tagField`. */
export type VariantsOf<F extends string, V extends Cases> = {
  [K in keyof V]: Flat<{ readonly [P in F]: K } & ValueOf<V[K]>>;
}[keyof V];

/**
 * One of several sections, told apart by the value of `tagField` (e.g. `source`); each section reads only
 * its own fields, so a field of another variant is refused as unknown. Without `defaultTag` the tag is
 * required. The tag chooses what the program does and is written nowhere itself: from a Pulumi secret it
 * is accepted (`not-written`); each variant's fields say what their secret values become.
 */
export function variants<F extends string, V extends Cases>(
  tagField: F,
  cases: V,
  defaultTag?: keyof V & string,
): Field<VariantsOf<F, V>, "default"> {
  type Value = VariantsOf<F, V>;
  // A variant's secrecy is declared on its fields: reading and the docs see them there.
  if (Object.values(cases).some((c) => c.use !== undefined))
    throw new Error("variants declare secrecy on fields");
  const tags = Object.keys(cases);
  const tagBase = oneOf(tags).notWritten();
  const tag = defaultTag === undefined ? tagBase : tagBase.default(defaultTag);
  const read = (raw: unknown, at: At): Value => {
    const obj = objectOf(raw, at);
    const t = tag.read(obj[tagField], at.child(tagField, tag.use ?? at.use));
    const c = cases[t];
    const options = c.options as SectionOptions<Infer<Shape>, unknown>;
    const fields = readObject(c.shape, options, obj, at, { alsoKnown: [tagField] });
    return { [tagField]: t, ...(fields as object) } as Value;
  };
  return new Field<Value, "default">(
    {
      leaf: false,
      missing: undefined as unknown as Value,
      read,
      absent: (at) => read(undefined, at),
      variants: { tagField, tag, cases },
    },
    "default",
  );
}

// ---------------------------------------------------------------------------------------------------------
// Reading settings.

/** The settings (paths below the namespace, e.g. `tls.certificate.role`) whose secret values go into resources. */
export class SecretInputs {
  constructor(private readonly paths: ReadonlySet<string> = new Set()) {}
  /** Whether the setting at `path` came from a Pulumi secret (and is to be passed on as one). */
  has(path: string): boolean {
    return this.paths.has(path);
  }
  get size(): number {
    return this.paths.size;
  }
}

/** A stack's settings, read. */
export interface Parsed<T> {
  readonly value: T;
  readonly secretInputs: SecretInputs;
}

/**
 * Reads a whole stack's settings: `raw` holds the value of each config key below `namespace`, and
 * `secretSections` the keys Pulumi marks secret. Problems go to `issues`; the caller throws.
 */
export function readStack<S extends Shape, T>(
  namespace: string,
  stack: Section<S, T>,
  raw: Readonly<Record<string, unknown>>,
  issues: IssueList,
  secretSections: ReadonlySet<string> = new Set(),
): Parsed<T> {
  const at = new At(namespace, "", issues, undefined, undefined, new Set(), new Set());
  const value = readObject(stack.shape, stack.options, { ...raw }, at, { root: { secretSections } });
  return { value, secretInputs: new SecretInputs(at.marks) };
}

/**
 * Reads one section on its own, at its full key (e.g. `clipper-pgbouncer:monitoring`): for tests, tools
 * and the policy pack. Problems go to `issues`.
 */
export function readSection<T>(field: Field<T, Presence>, key: string, raw: unknown, issues: IssueList): T {
  const at = new At(key, key.slice(key.indexOf(":") + 1), issues, undefined, field.use, new Set(), new Set());
  return field.read(raw, at);
}

/** A section's defaults: what it reads as when left out, without its required fields. */
export function defaultsOf<S extends Shape, T>(s: Section<S, T>): Flat<Omit<T, KeysOf<S, "required">>> {
  const value = readSection(s, "defaults:defaults", undefined, new IssueList()) as Record<string, unknown>;
  for (const [name, field] of Object.entries(s.shape)) {
    if (field.presence === "required") delete value[name];
  }
  return value as Flat<Omit<T, KeysOf<S, "required">>>;
}

/** One setting as the schema declares it, with its dotted key below the namespace. */
export interface SettingDeclaration {
  readonly key: string;
  readonly field: Field<unknown, Presence>;
  /** What a value from a Pulumi secret becomes (the field's own, else its section's). */
  readonly use: SecretUse | undefined;
  /** The variant tags (key to value) that select this setting; empty outside variants. */
  readonly selectedBy: Readonly<Record<string, string>>;
}

/**
 * Every setting a schema declares, objects and the fields below them, variants' tags and fields included (a
 * field several variants declare is listed once per variant). For the docs and their test.
 */
export function declaredSettings(
  shape: Shape,
  prefix = "",
  use?: SecretUse,
  selectedBy: Readonly<Record<string, string>> = {},
): SettingDeclaration[] {
  const join = (name: string) => (prefix === "" ? name : `${prefix}.${name}`);
  return Object.entries<AnyField>(shape).flatMap(([name, field]) => {
    const key = join(field.configKey ?? name);
    const own = field.use ?? use;
    const v = field.variants;
    const below = field.fields
      ? declaredSettings(field.fields, key, own, selectedBy)
      : v
        ? [
            ...declaredSettings({ [v.tagField]: v.tag }, key, own, selectedBy),
            ...Object.entries(v.cases).flatMap(([tag, c]) =>
              declaredSettings(c.shape, key, own, { ...selectedBy, [`${key}.${v.tagField}`]: tag }),
            ),
          ]
        : [];
    return [{ key, field, use: own, selectedBy }, ...below];
  });
}
