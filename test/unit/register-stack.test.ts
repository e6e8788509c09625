import * as assert from "node:assert/strict";
import * as fs from "node:fs";

/**
 * A V8 call site as prepareStackTrace receives it, of a JavaScript file without a source map. It answers its
 * file name and its text only: a source-map look-up asks for its position (getLineNumber, getColumnNumber, …)
 * and fails.
 */
function jsFrame(file: string, text: string): NodeJS.CallSite {
  const answers: Record<string, () => unknown> = { getFileName: () => file, toString: () => text };
  const lookedUp = (key: string) => () => {
    throw new Error(`looked up: ${key}`);
  };
  return new Proxy({} as NodeJS.CallSite, {
    // a symbol (Symbol.toPrimitive, when the frame is written into a string) is none of the call site's own
    get: (_, key) => (typeof key === "symbol" ? undefined : (answers[key] ?? lookedUp(key))),
  });
}

describe("GIVEN mocha's TypeScript loader (test/support/register.js)", () => {
  it("THEN a stack trace's TypeScript frames name their .ts lines (mapped through ts-node's source maps)", () => {
    const e = new Error("stack-probe-marker");
    const want = fs
      .readFileSync(__filename, "utf8")
      .split("\n")
      .findIndex((l) => l.includes('new Error("stack-probe-marker")'));
    assert.match(e.stack ?? "", new RegExp(`register-stack\\.test\\.ts:${want + 1}:\\d+\\)`));
  });

  it("THEN a stack trace of JavaScript frames only is written as V8 writes it, without a source-map look-up", () => {
    assert.equal(typeof Error.prepareStackTrace, "function");
    const prepare = (e: Error, frames: NodeJS.CallSite[]): unknown => Error.prepareStackTrace?.(e, frames);
    const frames = [
      jsFrame("/x/node_modules/a/index.js", "inner (/x/node_modules/a/index.js:1:2)"),
      jsFrame("/x/node_modules/b/index.js", "outer (/x/node_modules/b/index.js:3:4)"),
    ];
    assert.equal(
      prepare(new TypeError("m"), frames),
      "TypeError: m\n    at inner (/x/node_modules/a/index.js:1:2)\n    at outer (/x/node_modules/b/index.js:3:4)",
    );
    assert.equal(
      prepare(new Error(""), frames.slice(0, 1)),
      "Error\n    at inner (/x/node_modules/a/index.js:1:2)",
    );
  });
});
