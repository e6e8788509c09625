import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, othersCanRun, runnableCopy } from "../../harness/proc";

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

describe("harness: free ports", () => {
  it("GIVEN ports asked for THEN each is distinct, below the ephemeral range (no outgoing connection takes it), and free", async () => {
    const low = Number(
      fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
    );
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    assert.equal(new Set(ports).size, ports.length);
    for (const port of ports) {
      assert.ok(port < low, `${port} is in the ephemeral range (from ${low})`);
      const srv = net.createServer();
      await new Promise<void>((resolve, reject) =>
        srv.once("error", reject).listen(port, "127.0.0.1", resolve),
      );
      await new Promise((resolve) => srv.close(resolve));
    }
  });
});
