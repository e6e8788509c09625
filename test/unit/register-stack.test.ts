import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const REGISTER = path.join(__dirname, "..", "support", "register.js");
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the loader is a CommonJS require hook
const { UNWRITTEN } = require(REGISTER) as { UNWRITTEN: string };

/** The trace the Pulumi SDK keeps on a promise it makes, in a fresh Node.js with the loader and `env`. */
function sdkPromiseTrace(env: NodeJS.ProcessEnv): string {
  const script =
    'const { debuggablePromise } = require("@pulumi/pulumi/runtime/debuggable"); const p = Promise.resolve(1); ' +
    'debuggablePromise(p, "probe"); process.stdout.write(p._debugStackTrace);';
  return execFileSync(process.execPath, ["-r", REGISTER, "-e", script], {
    env: { ...process.env, PULUMI_DEBUG_PROMISE_LEAKS: "", ...env },
    encoding: "utf8",
  });
}

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
  it("THEN a stack trace's TypeScript frames name their .ts lines (looked up in their source maps)", () => {
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

  it("THEN a Node.js error's header carries its code, as Node writes it", () => {
    let e: unknown;
    try {
      fs.readFileSync(Number("5.5")); // a file descriptor must be an integer
    } catch (caught) {
      e = caught;
    }
    assert.match(
      String((e as Error).stack).split("\n")[0],
      /^TypeError \[ERR_INVALID_ARG_TYPE\]: The "path" argument/,
    );
  });

  it("THEN the Pulumi SDK's promise traces are written only when PULUMI_DEBUG_PROMISE_LEAKS asks for them", () => {
    // the SDK prints them only in that report; unset, nothing reads them
    assert.equal(sdkPromiseTrace({}), `Error${UNWRITTEN}`);
    const written = sdkPromiseTrace({ PULUMI_DEBUG_PROMISE_LEAKS: "1" });
    assert.match(
      written,
      /^Error\n {4}at debuggablePromise \(.*[\\/]@pulumi[\\/]pulumi[\\/]runtime[\\/]debuggable\.js:\d+:\d+\)/,
    );
    assert.ok(written.split("\n").length > 2, written);
  });

  it("THEN each file is transpiled once into the cache, and again when its text changes", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-swc-cache-"));
    try {
      const cache = path.join(dir, "cache");
      const file = path.join(dir, "probe.ts");
      const load = () =>
        execFileSync(
          process.execPath,
          ["-r", REGISTER, "-e", `process.stdout.write(require(${JSON.stringify(file)}).v)`],
          {
            env: { ...process.env, CLIPPER_SWC_CACHE: cache },
            encoding: "utf8",
          },
        );
      fs.writeFileSync(file, 'export const v: string = "first";\n');
      assert.equal(load(), "first");
      const entries = fs.readdirSync(cache);
      assert.equal(entries.length, 1, entries.join());
      // the cache is what is loaded: an entry changed by hand is what runs
      const entry = path.join(cache, entries[0]);
      fs.writeFileSync(entry, fs.readFileSync(entry, "utf8").replace('"first"', '"from the cache"'));
      assert.equal(load(), "from the cache");
      fs.writeFileSync(file, 'export const v: string = "second";\n');
      assert.equal(load(), "second");
      assert.equal(fs.readdirSync(cache).length, 2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
