/**
 * The commands the pod script may run: its header names them ("POSIX sh, and from Debian's base or busybox:
 * …"), and the local fleet puts exactly those on its PATH (SCRIPT_COMMANDS, besides `pgbouncer` and the
 * `getent` stand-in), so a command the script starts that the header does not name fails in the fleet's tests.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { SCRIPT_COMMANDS } from "../../fleet/fleet";

const SCRIPT = path.join(__dirname, "..", "..", "..", "components", "pgbouncer", "pgbouncer-pod.sh");

/** The commands the header names, from its "busybox:" to the full stop. */
function headerCommands(text: string): string[] {
  const m = /POSIX sh, and from Debian's base or busybox:([^.]*)\./.exec(text.replace(/\n# /g, " "));
  assert.ok(m, "the header names no commands");
  return m[1].trim().split(/\s+/).sort();
}

describe("GIVEN the pod script's header and the local fleet's PATH", () => {
  it("THEN the fleet's PATH holds exactly the commands the header names (getent is the fleet's stand-in)", () => {
    const named = headerCommands(fs.readFileSync(SCRIPT, "utf8"));
    assert.deepEqual([...SCRIPT_COMMANDS, "getent"].sort(), named);
  });

  it("THEN the script runs no date, readlink or cat: its clock is /proc/uptime, its mount check cd -P", () => {
    const code = fs
      .readFileSync(SCRIPT, "utf8")
      .split("\n")
      .filter((l) => !/^\s*#/.test(l));
    for (const command of ["date", "readlink", "cat"]) {
      const runs = new RegExp(`(^|[\\s;|&(\`$])${command}(\\s|$|\\))`);
      assert.deepEqual(
        code.filter((l) => runs.test(l)),
        [],
        `lines of the script that run ${command}`,
      );
    }
    assert.ok(code.some((l) => l.includes("</proc/uptime")));
    assert.ok(code.some((l) => l.includes("cd -P")));
  });
});
