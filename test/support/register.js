// mocha's TypeScript loader for both packages: transpile only (npm test type-checks the whole tree with
// tsc --noEmit), with SWC, which transpiles the program's modules in a third of the time TypeScript takes.
require("ts-node").register({ transpileOnly: true, swc: true });
