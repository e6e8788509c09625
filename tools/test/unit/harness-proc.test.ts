import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { othersCanRun, runnableCopy } from "../../harness/proc";

describe("harness: binaries the postgres user can run", () => {
  let closed: string;
  let bin: string;
  before(() => {
    // A clone under `mktemp -d` (mode 0700), as a CI checkout may be: its .deps/ binaries are closed to postgres.
    closed = fs.mkdtempSync(path.join(os.tmpdir(), "closed-"));
    fs.chmodSync(closed, 0o700);
    bin = path.join(closed, "tool");
    fs.writeFileSync(bin, "#!/bin/sh\necho ok\n", { mode: 0o755 });
  });
  after(() => fs.rmSync(closed, { recursive: true, force: true }));

  it("GIVEN a binary in a closed folder THEN others cannot run it, and the copy they can", () => {
    assert.equal(othersCanRun(bin), false);
    const copy = runnableCopy(bin);
    assert.notEqual(copy, bin);
    assert.equal(othersCanRun(copy), true);
    assert.equal(fs.readFileSync(copy, "utf8"), fs.readFileSync(bin, "utf8"));
    assert.equal(runnableCopy(bin), copy, "copied once per process");
  });

  it("GIVEN a system binary THEN it is used as it is", () => {
    const sh = fs.realpathSync("/bin/sh");
    assert.equal(othersCanRun(sh), true);
    assert.equal(runnableCopy(sh), sh);
  });
});
