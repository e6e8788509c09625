import * as assert from "assert";
import { ConfigError, ConfigReader, IssueList } from "../../components/common";

describe("ConfigReader", () => {
  function read(raw: unknown, fn: (r: ConfigReader) => unknown): { value: unknown; issues: string[] } {
    const issues = new IssueList();
    const r = new ConfigReader("ns:section", raw, issues);
    const value = fn(r);
    return { value, issues: issues.issues.map((i) => `${i.key}: ${i.message}`) };
  }

  it("applies a default only when the field is absent", () => {
    assert.deepStrictEqual(
      read({}, (r) => r.int("n", 5, { min: 0, max: 9 })),
      { value: 5, issues: [] },
    );
    assert.deepStrictEqual(
      read({ n: 0 }, (r) => r.int("n", 5, { min: 0, max: 9 })),
      { value: 0, issues: [] },
    );
  });

  it("refuses a non-object section by its key", () => {
    assert.deepStrictEqual(read(7, () => undefined).issues, ["ns:section: must be an object, got 7"]);
  });

  it("refuses out-of-range, fractional and non-numeric integers, naming key, value and range", () => {
    for (const bad of [-1, 10, 1.5, "3"]) {
      const { issues } = read({ n: bad }, (r) => r.int("n", 5, { min: 0, max: 9 }));
      assert.deepStrictEqual(issues, [
        `ns:section.n: is ${JSON.stringify(bad)}; must be an integer from 0 to 9`,
      ]);
    }
  });

  it("requires a field without default", () => {
    assert.deepStrictEqual(read({}, (r) => r.int("n", undefined, { min: 1, max: 2 })).issues, [
      "ns:section.n: is required (an integer from 1 to 2)",
    ]);
    assert.deepStrictEqual(read({}, (r) => r.string("s", undefined)).issues, ["ns:section.s: is required"]);
  });

  it("refuses empty strings and strings off the pattern", () => {
    assert.match(
      read({ s: "" }, (r) => r.string("s", "d")).issues[0],
      /ns:section.s: is ""; must be a non-empty/,
    );
    assert.match(
      read({ s: "A B" }, (r) => r.string("s", "d", /^[a-z]+$/, "lower-case letters")).issues[0],
      /ns:section.s: is "A B"; must be lower-case letters/,
    );
  });

  it("refuses booleans of the wrong type and values outside an enumeration", () => {
    assert.match(
      read({ b: "yes" }, (r) => r.bool("b", true)).issues[0],
      /ns:section.b: is "yes"; must be true or false/,
    );
    assert.match(
      read({ m: "pipelined" }, (r) => r.oneOf("m", "a", ["a", "b"])).issues[0],
      /ns:section.m: is "pipelined"; must be one of "a", "b"/,
    );
  });

  it("refuses empty selectors and invalid label values", () => {
    assert.match(
      read({ l: {} }, (r) => r.labels("l", { a: "b" })).issues[0],
      /ns:section.l: is \{\}; must be a non-empty map/,
    );
    assert.match(
      read({ l: { app: "no spaces" } }, (r) => r.labels("l", { a: "b" })).issues[0],
      /ns:section.l.app/,
    );
  });

  it("refuses unknown fields so a typo cannot silently fall back to a default", () => {
    const { issues } = read({ defaultPoolSise: 3 }, (r) => {
      r.int("defaultPoolSize", 50, { min: 1, max: 100 });
      r.rejectUnknown();
    });
    assert.deepStrictEqual(issues, ["ns:section.defaultPoolSise: is not a known setting"]);
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
});
