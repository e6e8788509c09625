import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { PORT_CLAIMS, claimPort, freePort, othersCanRun, runnableCopy } from "../../harness/proc";

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

  it("GIVEN every port it hands out THEN each is claimed for this process, across the machine's processes", async () => {
    const port = await freePort();
    assert.equal(fs.readFileSync(path.join(PORT_CLAIMS, String(port)), "utf8"), String(process.pid));
  });

  describe("GIVEN a port another process claimed (npm test's parallel workers)", () => {
    // below 10000: a port freePort never hands out
    const port = 9;
    const file = path.join(PORT_CLAIMS, String(port));
    afterEach(() => fs.rmSync(file, { force: true }));

    it("THEN while that process lives, the port is not claimed again", () => {
      const other = spawn("sleep", ["30"]);
      try {
        fs.mkdirSync(PORT_CLAIMS, { recursive: true });
        fs.writeFileSync(file, String(other.pid));
        assert.equal(claimPort(port), false);
        assert.equal(fs.readFileSync(file, "utf8"), String(other.pid));
      } finally {
        other.kill("SIGKILL");
      }
    });

    it("THEN once that process has exited, its claim is taken over", () => {
      const gone = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
      fs.mkdirSync(PORT_CLAIMS, { recursive: true });
      fs.writeFileSync(file, gone.stdout.trim());
      assert.equal(claimPort(port), true);
      assert.equal(fs.readFileSync(file, "utf8"), String(process.pid));
    });
  });
});
