/**
 * tools/shellcheck.sh's cache: a script shellcheck passed is skipped until its text changes, and a script
 * changed after it passed is checked again (and fails when it is wrong). Run on a throwaway git repository
 * holding the script and one shell script of its own.
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const SCRIPT = path.join(__dirname, "..", "..", "shellcheck.sh");

describe("GIVEN tools/shellcheck.sh with its cache", () => {
  let dir: string;
  const run = () => {
    const r = spawnSync("bash", [path.join(dir, "tools", "shellcheck.sh")], {
      encoding: "utf8",
      env: { ...process.env, SHELLCHECK_CACHE: path.join(dir, "cache") },
    });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  };
  const write = (text: string) => fs.writeFileSync(path.join(dir, "probe.sh"), `#!/bin/sh\n${text}\n`);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-shellcheck-"));
    fs.mkdirSync(path.join(dir, "tools"));
    fs.copyFileSync(SCRIPT, path.join(dir, "tools", "shellcheck.sh"));
    execFileSync("git", ["init", "-q", dir]);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("THEN a clean script is checked once, then skipped while its text stays", () => {
    write('echo "$1"');
    assert.match(run().out, /2 scripts clean \(2 checked/);
    assert.match(run().out, /2 scripts clean \(0 checked/);
  });

  it("AND a script changed after it passed is checked again, and fails when it is wrong", () => {
    write("echo $1");
    const r = run();
    assert.equal(r.ok, false, r.out);
    assert.match(r.out, /SC2086/);
    // still wrong: still checked (a failure is not remembered)
    assert.equal(run().ok, false);
    write('echo "$1"');
    assert.match(run().out, /2 scripts clean \(0 checked/, "the clean text was remembered");
  });
});
