/**
 * tools/node.sh, the README's prerequisite: it keeps a `node` on PATH that is new enough and, with --check,
 * says which is which. (Fetching the pinned release needs the npm registry; .ci/run exercises that.)
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const SCRIPT = path.resolve(__dirname, "../../node.sh");
const PIN = JSON.parse(fs.readFileSync(path.resolve(__dirname, "../../node-runtime.json"), "utf8")) as {
  testMinimum: string;
};

/** Runs node.sh with only a fake `node` of `major` (and the system's basic tools) on PATH. */
function withFakeNode(major: number, args: string[]): { status: number | null; stdout: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-node-"));
  try {
    // Answers `node -p '<major expression>'` and `node --version` as a Node of that major would.
    fs.writeFileSync(
      path.join(dir, "node"),
      `#!/bin/sh\nif [ "$1" = --version ]; then echo v${major}.1.0; else echo ${major}; fi\n`,
      { mode: 0o755 },
    );
    const r = spawnSync("bash", [SCRIPT, ...args], {
      encoding: "utf8",
      env: { PATH: `${dir}:/usr/bin:/bin`, HOME: dir },
    });
    return { status: r.status, stdout: r.stdout };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("tools/node.sh", () => {
  const min = Number(PIN.testMinimum);

  it(`--check accepts a node of ${PIN.testMinimum} or newer and refuses an older one`, () => {
    assert.equal(withFakeNode(min, ["--check"]).status, 0);
    assert.equal(withFakeNode(min + 2, ["--check"]).status, 0);
    assert.equal(withFakeNode(min - 4, ["--check"]).status, 1);
  });

  it("keeps a new enough node on PATH: it prints no PATH change for eval", () => {
    const r = withFakeNode(min, []);
    assert.equal(r.status, 0);
    assert.doesNotMatch(r.stdout, /export PATH/);
    assert.match(r.stdout, /^# node\.sh: v\d+\.1\.0 on PATH/);
  });
});
