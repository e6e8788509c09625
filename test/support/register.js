// mocha's TypeScript loader for both packages: transpile only (npm test type-checks the whole tree with tsc
// --noEmit), with SWC, as ts-node --transpile-only --swc does for the CLIs (package.json's scripts), and with
// the options ts-node derives from tsconfig.json (target es2022, module node16 emitted as CommonJS,
// esModuleInterop). ts-node itself is not loaded: it loads TypeScript's compiler to read tsconfig.json
// (loading components/pgbouncer took 0.3 CPU-s through ts-node, 0.09 through this loader; a test that imports
// the Pulumi SDK still loads the compiler, which the SDK's closure serializer requires).
const crypto = require("node:crypto");
const fs = require("node:fs");
const { findSourceMap } = require("node:module");
const path = require("node:path");
const swc = require("@swc/core");

const SWC_OPTIONS = {
  swcrc: false,
  configFile: false,
  sourceMaps: "inline",
  module: { type: "commonjs", noInterop: false, strictMode: true, ignoreDynamic: true },
  jsc: {
    parser: { syntax: "typescript", dynamicImport: true },
    target: "es2022",
    keepClassNames: true,
    transform: { useDefineForClassFields: true },
  },
};

// Each file's JavaScript is kept on disk, keyed by SWC's version, these options, the file's path (its source
// map names it) and its text: every mocha process of npm test (a dozen or so) transpiled the same files again,
// 0.6 CPU-s in SWC alone in the tools' integration tier's workers. CLIPPER_SWC_CACHE names the folder;
// empty: no cache.
const CACHE =
  process.env.CLIPPER_SWC_CACHE ??
  path.join(__dirname, "..", "..", "node_modules", ".cache", "clipper", "swc");
const CACHE_SALT = JSON.stringify([require("@swc/core/package.json").version, SWC_OPTIONS]);

function transpile(source, filename) {
  return swc.transformSync(source, { ...SWC_OPTIONS, filename }).code;
}

/** The file's JavaScript from the cache, or transpiled and put there (written whole, then renamed in). */
function cachedTranspile(source, filename) {
  if (!CACHE) return transpile(source, filename);
  const key = crypto.createHash("sha256").update(CACHE_SALT).update("\0").update(filename).update("\0");
  const file = path.join(CACHE, `${key.update(source).digest("hex")}.js`);
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    // not there yet
  }
  const code = transpile(source, filename);
  try {
    fs.mkdirSync(CACHE, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, file);
  } catch {
    // a read-only tree runs without the cache
  }
  return code;
}

// Node keeps each module's inline source map (findSourceMap) once this is on.
process.setSourceMapsEnabled(true);
require.extensions[".ts"] = function compileTypeScript(module, filename) {
  module._compile(cachedTranspile(fs.readFileSync(filename, "utf8"), filename), filename);
};

// Stack traces: a TypeScript frame names its .ts line (looked up in its source map); a frame of JavaScript is
// written as V8 writes it (it has no source map). The Pulumi SDK takes a stack trace for each promise it makes
// (runtime/debuggable.js) and prints it only in the promise-leak report that PULUMI_DEBUG_PROMISE_LEAKS turns
// on: without it, that trace is never read, and is not written (writing and mapping those took 2.3 of the
// unit tier's 8.5 CPU-s).
const writePromiseTraces = Boolean(process.env.PULUMI_DEBUG_PROMISE_LEAKS);
const UNWRITTEN = "\n    (a Pulumi SDK promise's trace: written when PULUMI_DEBUG_PROMISE_LEAKS is set)";
const isTypeScript = (file) => /\.[cm]?tsx?$/.test(file ?? "");
const isPromiseTrace = (frames) =>
  frames.length > 0 &&
  /[\\/]@pulumi[\\/]pulumi[\\/]runtime[\\/]debuggable\.js$/.test(frames[0].getFileName() ?? "") &&
  frames[0].getFunctionName() === "debuggablePromise";

/** One frame's text, its generated line and column replaced by the .ts ones when its source map has them. */
function frameText(frame) {
  const text = String(frame);
  const file = frame.getFileName();
  const line = frame.getLineNumber();
  const column = frame.getColumnNumber();
  const at = `${file}:${line}:${column}`;
  const entry = findSourceMap(file)?.findEntry(line - 1, column - 1);
  if (!entry || entry.originalLine === undefined) return text;
  const i = text.lastIndexOf(at);
  if (i < 0) return text;
  return `${text.slice(0, i)}${file}:${entry.originalLine + 1}:${entry.originalColumn + 1}${text.slice(i + at.length)}`;
}

/**
 * The header V8 writes, Error.prototype.toString's text (`Name: message`, or either alone when the other is
 * empty); Node.js's own errors as Node writes them, with their code (`TypeError [ERR_INVALID_ARG_TYPE]: …`).
 */
function header(error) {
  try {
    const code = error.code;
    // (an AssertionError has it in its name already)
    if (typeof code === "string" && /^ERR_/.test(code) && !String(error.name).includes(`[${code}]`)) {
      return `${error.name} [${code}]: ${error.message}`;
    }
    return Error.prototype.toString.call(error);
  } catch {
    return "Error";
  }
}

function prepareStackTrace(error, frames) {
  if (!writePromiseTraces && isPromiseTrace(frames)) return header(error) + UNWRITTEN;
  const lines = frames.map((f) => `\n    at ${isTypeScript(f.getFileName()) ? frameText(f) : String(f)}`);
  return header(error) + lines.join("");
}
Error.prepareStackTrace = prepareStackTrace;

module.exports = { prepareStackTrace, UNWRITTEN, cachedTranspile };
