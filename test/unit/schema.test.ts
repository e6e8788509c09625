/**
 * The settings schema builder (components/common/schema.ts), on small schemas made up here: every message
 * it produces, defaults, optional fields, variants, checks, unknown keys, and what it does with a section
 * Pulumi marks secret.
 */
import * as assert from "assert";
import {
  ConfigError,
  type Field,
  IssueList,
  type Presence,
  SecretInputs,
  bool,
  declaredSettings,
  defaultsOf,
  int,
  labels,
  oneOf,
  readSection,
  readStack,
  section,
  string,
  stringList,
  variants,
} from "../../components/common";

function read<T>(field: Field<T, Presence>, raw: unknown): { value: T; issues: string[] } {
  const issues = new IssueList();
  const value = readSection(field, "ns:section", raw, issues);
  return { value, issues: issues.issues.map((i) => `${i.key}: ${i.message}`) };
}

/** The issues of reading `raw` as a section of one field `f`. */
function issuesOf(f: Field<unknown, Presence>, raw: Record<string, unknown>): string[] {
  return read(section({ f }), raw).issues;
}

describe("the settings schema", () => {
  it("applies a default only when the field is absent", () => {
    const s = section({ n: int(0, 9).default(5) });
    assert.deepStrictEqual(read(s, {}), { value: { n: 5 }, issues: [] });
    assert.deepStrictEqual(read(s, { n: 0 }), { value: { n: 0 }, issues: [] });
    assert.deepStrictEqual(read(s, undefined), { value: { n: 5 }, issues: [] });
  });

  it("refuses a non-object section by its key, and reads it as empty", () => {
    assert.deepStrictEqual(read(section({ n: int(0, 9).default(5) }), 7), {
      value: { n: 5 },
      issues: ["ns:section: must be an object, got 7"],
    });
  });

  it("refuses out-of-range, fractional and non-numeric integers, naming key, value and range", () => {
    for (const bad of [-1, 10, 1.5, "3"]) {
      assert.deepStrictEqual(issuesOf(int(0, 9).default(5), { f: bad }), [
        `ns:section.f: is ${JSON.stringify(bad)}; must be an integer from 0 to 9`,
      ]);
    }
  });

  it("requires a field without default, saying what is expected", () => {
    assert.deepStrictEqual(issuesOf(int(1, 2), {}), ["ns:section.f: is required (an integer from 1 to 2)"]);
    assert.deepStrictEqual(issuesOf(string(), {}), ["ns:section.f: is required"]);
    assert.deepStrictEqual(issuesOf(string(/^[a-z]+$/, "lower-case letters"), {}), [
      "ns:section.f: is required (lower-case letters)",
    ]);
  });

  it("refuses empty strings and strings off the pattern", () => {
    assert.deepStrictEqual(issuesOf(string().default("d"), { f: "" }), [
      'ns:section.f: is ""; must be a non-empty string',
    ]);
    assert.deepStrictEqual(issuesOf(string(/^[a-z]+$/, "lower-case letters").default("d"), { f: 3 }), [
      "ns:section.f: is 3; must be a non-empty string (lower-case letters)",
    ]);
    assert.deepStrictEqual(issuesOf(string(/^[a-z]+$/, "lower-case letters").default("d"), { f: "A B" }), [
      'ns:section.f: is "A B"; must be lower-case letters',
    ]);
  });

  it("refuses booleans of the wrong type and values outside an enumeration", () => {
    assert.deepStrictEqual(issuesOf(bool().default(true), { f: "yes" }), [
      'ns:section.f: is "yes"; must be true or false',
    ]);
    assert.deepStrictEqual(issuesOf(oneOf(["a", "b"]).default("a"), { f: "pipelined" }), [
      'ns:section.f: is "pipelined"; must be one of "a", "b"',
    ]);
  });

  it("refuses empty selectors and invalid label values, and copies a default selector", () => {
    const l = labels().default({ a: "b" });
    assert.deepStrictEqual(issuesOf(l, { f: {} }), [
      "ns:section.f: is {}; must be a non-empty map of label keys to values",
    ]);
    assert.deepStrictEqual(issuesOf(l, { f: { app: "no spaces" } }), [
      'ns:section.f.app: is "no spaces"; label keys and values must be valid Kubernetes labels',
    ]);
    const s = section({ l });
    assert.notStrictEqual(read(s, {}).value.l, read(s, {}).value.l);
  });

  it("refuses a list that is empty or holds a value off the pattern", () => {
    const list = stringList(/^\d+$/, "numbers").optional();
    assert.deepStrictEqual(issuesOf(list, { f: [] }), [
      "ns:section.f: is []; must be a non-empty list of numbers",
    ]);
    assert.deepStrictEqual(issuesOf(list, { f: ["1", "x"] }), [
      'ns:section.f: is ["1","x"]; must be a non-empty list of numbers',
    ]);
  });

  it("leaves an optional field out when absent, and checks it like a required one when present", () => {
    const s = section({ n: int(1, 9).optional() });
    assert.deepStrictEqual(read(s, {}), { value: {}, issues: [] });
    assert.ok(!("n" in read(s, {}).value));
    assert.deepStrictEqual(read(s, { n: 0 }).issues, ["ns:section.n: is 0; must be an integer from 1 to 9"]);
  });

  it("refuses unknown fields so a typo cannot silently fall back to a default", () => {
    assert.deepStrictEqual(
      read(section({ defaultPoolSize: int(1, 100).default(50) }), { defaultPoolSise: 3 }),
      {
        value: { defaultPoolSize: 50 },
        issues: ["ns:section.defaultPoolSise: is not a known setting"],
      },
    );
  });

  it("runs a section's checks on what was read, with the keys of its fields", () => {
    const s = section(
      { low: int(0, 9).default(1), high: int(0, 9).default(5) },
      {
        check: (v, c) => {
          if (v.low > v.high) c.add("low", `is ${v.low}; must not exceed ${c.key("high")} (${v.high})`);
          if (c.has("high")) c.add("", "high was set");
        },
      },
    );
    assert.deepStrictEqual(read(s, { low: 7 }).issues, [
      "ns:section.low: is 7; must not exceed ns:section.high (5)",
    ]);
    assert.deepStrictEqual(read(s, { high: 5 }).issues, ["ns:section: high was set"]);
  });

  it("reads a setting from the config key it names", () => {
    assert.deepStrictEqual(
      read(section({ workload: int(0, 9).default(1).fromKey("pgbouncer") }), { pgbouncer: 2 }),
      {
        value: { workload: 2 },
        issues: [],
      },
    );
  });

  describe("variants", () => {
    const source = variants(
      "source",
      {
        file: section({ path: string(), mode: int(0, 511).default(420) }),
        url: section({ url: string() }),
      },
      "file",
    );
    it("read the default variant when the tag is absent, with the tag first", () => {
      assert.deepStrictEqual(read(source, { path: "/x" }), {
        value: { source: "file", path: "/x", mode: 420 },
        issues: [],
      });
    });
    it("read only the chosen variant's fields: another's is unknown, a missing one required", () => {
      assert.deepStrictEqual(read(source, { source: "url", path: "/x" }).issues, [
        "ns:section.url: is required",
        "ns:section.path: is not a known setting",
      ]);
    });
    it("refuse an unknown tag, and read the default variant", () => {
      assert.deepStrictEqual(read(source, { source: "ftp", path: "/x" }).issues, [
        'ns:section.source: is "ftp"; must be one of "file", "url"',
      ]);
    });
  });

  it("gives a section's defaults without its required fields", () => {
    const s = section({ a: int(0, 9).default(1), b: int(0, 9), c: int(0, 9).optional() });
    assert.deepStrictEqual(defaultsOf(s), { a: 1 });
  });

  it("lists every setting it declares, by config key, variants and their tags included", () => {
    const shape = {
      a: section({ b: int(0, 9).default(1), c: variants("kind", { x: section({ d: string() }) }, "x") }),
      e: bool().default(false).fromKey("f"),
    };
    assert.deepStrictEqual(
      declaredSettings(shape).map((d) => d.key),
      ["a", "a.b", "a.c", "a.c.kind", "a.c.d", "f"],
    );
  });

  it("throws one ConfigError listing every problem", () => {
    const issues = new IssueList();
    issues.add("a", "bad");
    issues.add("b", "worse");
    assert.throws(
      () => issues.throwIfAny(),
      (e: unknown) => e instanceof ConfigError && e.issues.length === 2 && /2 problems/.test(e.message),
    );
    assert.doesNotThrow(() => new IssueList().throwIfAny());
  });

  describe("a whole stack, some of its sections Pulumi secrets", () => {
    const stack = section({
      name: string().default("n").landsIn("the ConfigMap"),
      db: section({
        host: string().default("h"),
        limit: int(1, 9).default(5).notWritten(),
        role: string().default("r").secretInput(),
      }).landsIn("pgbouncer.ini"),
    });
    function parse(raw: Record<string, unknown>, secret: string[]) {
      const issues = new IssueList();
      const parsed = readStack("ns", stack, raw, issues, new Set(secret));
      return { ...parsed, issues: issues.issues.map((i) => `${i.key}: ${i.message}`) };
    }

    it("refuses a secret value where it would be written in plaintext, naming the key and the place", () => {
      assert.deepStrictEqual(parse({ db: { host: "db.internal" } }, ["db"]).issues, [
        "ns:db.host: is a Pulumi secret (a value in ns:db is set with --secret, which makes all of it " +
          "secret), but pgbouncer.ini would hold it in plaintext; set ns:db without --secret, or leave this " +
          "setting out",
      ]);
      assert.match(
        parse({ name: "x" }, ["name"]).issues[0],
        /^ns:name: is a Pulumi secret .* but the ConfigMap/,
      );
    });

    it("accepts a secret value that no resource gets, and marks one that goes in as a secret", () => {
      const p = parse({ db: { limit: 7, role: "admin" } }, ["db"]);
      assert.deepStrictEqual(p.issues, []);
      assert.deepStrictEqual(p.value.db, { host: "h", limit: 7, role: "admin" });
      assert.ok(p.secretInputs.has("db.role"));
      assert.ok(!p.secretInputs.has("db.limit") && !p.secretInputs.has("db.host"));
      assert.strictEqual(p.secretInputs.size, 1);
    });

    it("takes defaults as plain: they come from the program, not the secret", () => {
      assert.deepStrictEqual(parse({ db: {} }, ["db"]), {
        value: { name: "n", db: { host: "h", limit: 5, role: "r" } },
        secretInputs: new SecretInputs(new Set()),
        issues: [],
      });
    });

    it("never quotes a secret value in a message", () => {
      const issues = parse({ db: { limit: 123456, role: "", extra: "hunter2" } }, ["db"]).issues;
      assert.deepStrictEqual(issues, [
        "ns:db.limit: is [secret]; must be an integer from 1 to 9",
        "ns:db.role: is [secret]; must be a non-empty string",
        "ns:db.extra: is not a known setting",
      ]);
      // The same values from a plain key are quoted.
      assert.match(parse({ db: { limit: 123456 } }, []).issues[0], /is 123456;/);
    });

    it("masks values read from a secret key in the checks' messages, whichever setting they quote", () => {
      const checked = section(
        { db: section({ limit: int(1, 999).default(5).notWritten() }).landsIn("x") },
        { check: (v, c) => c.add("db.limit", `is ${v.db.limit}; 2 x ${v.db.limit} = ${2 * v.db.limit}`) },
      );
      const issues = new IssueList();
      readStack("ns", checked, { db: { limit: 21 } }, issues, new Set(["db"]));
      assert.deepStrictEqual(issues.issues, [
        { key: "ns:db.limit", message: "is [secret]; 2 x [secret] = 42" },
      ]);
    });

    it("refuses an unknown top-level key, listing the known ones", () => {
      assert.deepStrictEqual(parse({ dbs: {} }, []).issues, [
        "ns:dbs: is not a known setting (known: name, db)",
      ]);
    });
  });
});
