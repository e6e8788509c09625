// mocha's TypeScript loader for both packages: transpile only (npm test type-checks the whole tree with
// tsc --noEmit), with SWC, which transpiles the program's modules in a third of the time TypeScript takes.
const path = require("node:path");
require("ts-node").register({ transpileOnly: true, swc: true });

// ts-node maps every frame of every stack trace through source maps (@cspotcode/source-map-support, which it
// installs). The Pulumi SDK takes a stack trace for each promise it makes (runtime/debuggable.js), mostly
// frames of its own JavaScript, and looking those up took 4 of the unit tier's 11.5 CPU-s. Here only the
// frames of TypeScript files are mapped (ts-node's source maps are theirs), so a failing test's stack still
// names the .ts lines; the others are written as V8 writes them, which is what mapping gives a frame of
// JavaScript without a source map. A Node.js error (its header carries the code) goes to ts-node's as before.
const mapped = Error.prepareStackTrace;
const { wrapCallSite } = require(
  require.resolve("@cspotcode/source-map-support", { paths: [path.dirname(require.resolve("ts-node"))] }),
);
const isTypeScript = (frame) => /\.[cm]?tsx?$/.test(frame.getFileName() ?? "");
Error.prepareStackTrace = function prepareStackTrace(error, frames) {
  if (/^ERR_/.test(String(error?.code))) return mapped.call(this, error, frames);
  const name = error?.name || "Error";
  const message = error?.message || "";
  // as source-map-support walks them: from the outermost, each mapped frame naming its caller's function
  const state = { nextPosition: null, curPosition: null };
  const lines = [];
  for (let i = frames.length - 1; i >= 0; i--) {
    if (isTypeScript(frames[i])) {
      lines.push(`\n    at ${wrapCallSite(frames[i], state)}`);
    } else {
      state.curPosition = null;
      lines.push(`\n    at ${frames[i]}`);
    }
    state.nextPosition = state.curPosition;
  }
  return (message ? `${name}: ${message}` : name) + lines.reverse().join("");
};
