/**
 * The entry the Pulumi CLI loads for `--policy-pack policy` (package.json "main"). The SDK's policy-pack
 * runner (@pulumi/pulumi/cmd/run-policy-pack, 3.248.0 to 3.276.0) registers ts-node with `typeCheck: true`, whatever the
 * pack's settings: a type check of the pack and the component files it imports, about 10 s of every
 * `pulumi preview` and `pulumi up`. `npm test` type-checks the pack already (tsc over policy/**), so here it
 * is only transpiled: the runner's ts-node ignores every file (this folder's tsconfig.json, "ts-node"
 * "ignore"), and this one compiles them, with SWC when it is installed, else TypeScript's transpiler.
 */
"use strict";
const path = require("path");

let swc = false;
try {
  require.resolve("@swc/core");
  swc = true;
} catch {
  // TypeScript's own transpiler
}
require("ts-node").register({
  project: path.join(__dirname, "tsconfig.json"),
  transpileOnly: true,
  swc,
  // The project's "ignore" is for the runner's type-checking instance; this one compiles all but packages.
  ignore: ["(?:^|/)node_modules/"],
});
require("./index.ts");
