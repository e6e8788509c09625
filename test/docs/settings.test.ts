/**
 * docs/settings.md against the schema: its tables list every setting key the program declares (variants
 * included), and only those, each with its declared default; its list of settings a stack may give as
 * Pulumi secrets is the schema's.
 */
import * as assert from "assert";
import { type SettingDeclaration, declaredSettings } from "../../components/common";
import { STACK_SETTINGS } from "../../stacks/settings";
import { readDoc } from "../support/docs";

const SETTINGS = readDoc("docs/settings.md");
/** The tables of "## Every setting", up to the next second-level heading. */
const TABLES = SETTINGS.split(/^## Every setting$/m)[1]?.split(/^## /m)[0] ?? "";
/** The section on secrets, up to the next second-level heading. */
const SECRETS = SETTINGS.split(/^## Settings given as Pulumi secrets$/m)[1]?.split(/^## /m)[0] ?? "";

const DECLARED = declaredSettings(STACK_SETTINGS.shape);
/**
 * Sections are documented by their fields (`pool`, `pgbouncer.resources`, `tls.certificate`, ...), except an
 * optional one, whose row says what leaving it out means (`credentials.authQuery`, `tls.serverCa`).
 */
const BY_FIELDS = new Set(
  DECLARED.filter((d) => (d.field.fields || d.field.variants) && d.field.presence !== "optional").map(
    (d) => d.key,
  ),
);

/** The rows of the tables: key -> default cell. */
function documentedRows(): [string, string][] {
  return [...TABLES.matchAll(/^\| `([A-Za-z.]+)` +\| ([^|]*)\|/gm)].map((m) => [m[1], m[2].trim()]);
}

/** What the default cell must start with for a declaration, or undefined when the schema says nothing. */
function expectedDefault(d: SettingDeclaration): string | RegExp | undefined {
  const { presence, defaultValue } = d.field;
  if (presence === "required") return /^\*\*required\*\*/;
  if (presence !== "default" || defaultValue === undefined) return undefined;
  if (typeof defaultValue === "object" && defaultValue !== null) {
    const entries = Object.entries(defaultValue as Record<string, string>).map(([k, v]) => `${k}: ${v}`);
    return `\`${entries.join(", ")}\``;
  }
  const v = defaultValue;
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean"
    ? `\`${String(v)}\``
    : undefined;
}

describe("docs/settings.md", () => {
  it("has the settings tables", () => {
    assert.ok(TABLES.length > 0, 'no "## Every setting" section');
    assert.ok(documentedRows().length > 60);
  });

  it("documents every setting the schema declares", () => {
    const keys = [...new Set(DECLARED.map((d) => d.key))];
    assert.ok(keys.length > 60, `only ${keys.length} keys found`);
    const documented = new Set(documentedRows().map(([k]) => k));
    assert.deepStrictEqual(
      keys.filter((k) => !documented.has(k) && !BY_FIELDS.has(k)),
      [],
    );
  });

  it("documents no setting the schema does not declare, and none twice", () => {
    const keys = new Set(DECLARED.map((d) => d.key));
    const documented = documentedRows().map(([k]) => k);
    assert.deepStrictEqual(
      documented.filter((k) => !keys.has(k)),
      [],
    );
    assert.deepStrictEqual(
      documented.filter((k, i) => documented.indexOf(k) !== i),
      [],
    );
  });

  it("gives each setting the default the schema declares (the check can fail: a wrong one is seen)", () => {
    const rows = new Map(documentedRows());
    const wrong = (cells: ReadonlyMap<string, string>) =>
      DECLARED.flatMap((d) => {
        const want = expectedDefault(d);
        const cell = cells.get(d.key);
        if (want === undefined || cell === undefined) return [];
        const ok = typeof want === "string" ? cell.startsWith(want) : want.test(cell);
        return ok ? [] : [`${d.key}: documented ${cell}, declared ${String(want)}`];
      });
    assert.deepStrictEqual(wrong(rows), []);
    const broken = new Map(rows).set("pool.defaultPoolSize", "`40`");
    assert.deepStrictEqual(wrong(broken), ["pool.defaultPoolSize: documented `40`, declared `50`"]);
  });

  it("lists exactly the settings a stack may give as Pulumi secrets", () => {
    assert.ok(SECRETS.length > 0, 'no "## Settings given as Pulumi secrets" section');
    const listed = (label: string) => {
      const line = SECRETS.split("\n- ").find((l) => l.startsWith(label)) ?? "";
      return [...line.matchAll(/`([A-Za-z.]+)`/g)].map((m) => m[1]).sort();
    };
    const declared = (kind: string) =>
      [...new Set(DECLARED.filter((d) => d.use?.kind === kind && !d.field.fields).map((d) => d.key))].sort();
    assert.deepStrictEqual(listed("Kept out of every resource"), declared("not-written"));
    assert.deepStrictEqual(listed("Passed on as secrets"), declared("secret-input"));
  });
});
