/**
 * The peer-pool patch (tools/harness/patches/) as install-test-deps.sh uses it: it applies to the release's
 * source with `patch -p1`, and the key the harness checks a build against is the one the script writes.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PGBOUNCER_RELEASE } from "../../../components/pgbouncer";
import { PEER_POOL_CANCELS_PATCH, patchedBuildKey } from "../../harness/binary";

const TARBALL = path.resolve(__dirname, "../../../../shared", PGBOUNCER_RELEASE.vendoredTarball);

describe("GIVEN the peer-pool patch for the release the stacks deploy", () => {
  it("THEN its build key is the release and the first 16 hex digits of sha256sum, as the script computes it", () => {
    const sha = execFileSync("sha256sum", [PEER_POOL_CANCELS_PATCH], { encoding: "utf8" }).slice(0, 16);
    assert.equal(patchedBuildKey(), `${PGBOUNCER_RELEASE.version}+peer-pool-cancels-${sha}`);
  });

  it("THEN it applies with patch -p1 to the release tarball's src/janitor.c, and only there", function () {
    if (!fs.existsSync(TARBALL)) this.skip();
    const text = fs.readFileSync(PEER_POOL_CANCELS_PATCH, "utf8");
    assert.deepEqual(
      [...text.matchAll(/^\+\+\+ (\S+)/gm)].map((m) => m[1]),
      ["b/src/janitor.c"],
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peer-pool-patch-"));
    try {
      const top = `pgbouncer-${PGBOUNCER_RELEASE.version}`;
      execFileSync("tar", ["xzf", TARBALL, "-C", dir, `${top}/src/janitor.c`]);
      const out = execFileSync("patch", ["-p1", "--dry-run", "--batch", "-i", PEER_POOL_CANCELS_PATCH], {
        cwd: path.join(dir, top),
        encoding: "utf8",
      });
      assert.match(out, /^checking file src\/janitor\.c$/m);
      assert.doesNotMatch(out, /FAILED|offset|fuzz/i);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
