/**
 * A renewed client certificate reaching PgBouncer the way the pod does it: the product's reload script
 * (`tlsReloadCommand`, real `/bin/sh`) runs the real PgBouncer 1.25.2 on a TLS directory laid out as the
 * kubelet mounts a Secret, and the test swaps `..data` atomically as the kubelet's atomic writer does. The
 * connections open across the swap must stay up on their TLS sessions; new ones must get the new certificate.
 * The time from the swap to the first new connection that sees it is printed and bounded: the script looks
 * at the files once in `tls.reloadCheckSeconds` (the stack's value here) one-second ticks, and a tick takes
 * a little over a second (`sleep 1` forked, then the loop's own commands); then PgBouncer reloads on SIGHUP
 * and the test's next poll (every 50 ms) connects. The bound allows the interval plus 1 s for those.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { TLS_PATHS, tlsReloadCommand } from "../../../../components/pgbouncer";
import { loadStackSettings } from "../../../../stacks/settings";
import {
  type Conn,
  type IssuedCert,
  type KubeletTlsDir,
  type PgBouncerHandle,
  PgClient,
  kubeletTlsDir,
  psqlRows,
  sleep,
  issueLocalCert,
} from "../../../harness";
import { runAsIds } from "../../../harness/proc";
import {
  APP_USER,
  STATS_PASSWORD,
  type TlsWorld,
  logLines,
  pooledConn,
  scriptLog,
  startTlsPgBouncer,
  startTlsWorld,
} from "../../support/tls-pooler";

const prod = loadStackSettings("prod");
const OPEN = 20;

describe("GIVEN PgBouncer run by the product's reload script on a kubelet-style TLS dir, 20 TLS clients connected", function () {
  const every = prod.tls.reloadCheckSeconds;
  this.timeout(60_000 + every * 1000);
  let world: TlsWorld;
  let first: IssuedCert;
  let renewed: IssuedCert;
  let tlsDir: KubeletTlsDir;
  let bouncer: PgBouncerHandle;
  let app: Conn;
  let open: PgClient[] = [];

  before(async () => {
    world = await startTlsWorld(prod);
    first = issueLocalCert(world.poolerCa, "pooler", "pooler-1");
    renewed = issueLocalCert(world.poolerCa, "pooler", "pooler-2");
    const dir = path.join(world.dir, "pgbouncer-tls");
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chownSync(dir, runAsIds().uid, runAsIds().gid);
    const name = (file: string) => path.basename(file);
    tlsDir = kubeletTlsDir(dir, {
      [name(TLS_PATHS.certFile)]: first.certPem,
      [name(TLS_PATHS.keyFile)]: fs.readFileSync(first.keyFile, "utf8"),
      [name(TLS_PATHS.serverCaFile)]: world.postgresCa.certPem,
    });
    bouncer = await startTlsPgBouncer(
      world,
      prod,
      {
        certFile: tlsDir.file(name(TLS_PATHS.certFile)),
        keyFile: tlsDir.file(name(TLS_PATHS.keyFile)),
        serverCaFile: tlsDir.file(name(TLS_PATHS.serverCaFile)),
      },
      {
        // the container's command as the pod runs it; `pgbouncer` found on PATH as in the image
        command: (bin, ini) => [
          "/usr/bin/env",
          `PATH=${path.dirname(bin)}:/usr/bin:/bin`,
          ...tlsReloadCommand(ini, tlsDir.dir, every),
        ],
      },
    );
    app = pooledConn(world, bouncer);
    open = await Promise.all(Array.from({ length: OPEN }, () => PgClient.connect(app)));
    for (const c of open) assert.equal((await c.query("SELECT 1")).rows[0][0], "1");
  });
  after(async () => {
    for (const c of open) c.close();
    await bouncer?.stop();
    await world?.stop();
  });

  it("THEN PgBouncer runs as the script's child, and every open connection has the first certificate", () => {
    const script = parentOf(bouncer.pids()[0]);
    assert.match(fs.readFileSync(`/proc/${script}/cmdline`, "utf8"), /^\/bin\/sh\0-c\0/);
    for (const c of open) assert.equal(c.peerCertificate?.serialNumber, first.serialNumber);
    assert.notEqual(first.serialNumber, renewed.serialNumber);
  });

  describe("WHEN the Secret is renewed (..data swapped atomically to the new certificate)", () => {
    let sockets: unknown[];
    let swappedAt: number;
    let seenAfterMs: number | undefined;
    let oldDataDir: string;

    before(async () => {
      sockets = open.map((c) => c.transport);
      oldDataDir = tlsDir.current();
      const name = (file: string) => path.basename(file);
      swappedAt = tlsDir.update({
        [name(TLS_PATHS.certFile)]: renewed.certPem,
        [name(TLS_PATHS.keyFile)]: fs.readFileSync(renewed.keyFile, "utf8"),
        [name(TLS_PATHS.serverCaFile)]: world.postgresCa.certPem,
      });
      // a new connection every 50 ms until one sees the renewed certificate, for at most the interval + 5 s
      while (Date.now() - swappedAt < every * 1000 + 5000) {
        const c = await PgClient.connect(app);
        const serial = c.peerCertificate?.serialNumber;
        const at = Date.now();
        c.close();
        if (serial === renewed.serialNumber) {
          seenAfterMs = at - swappedAt;
          break;
        }
        assert.equal(serial, first.serialNumber);
        await sleep(50);
      }
      console.log(
        `      rotation: swap of ..data -> first new connection with the renewed certificate: ` +
          `${seenAfterMs ?? "never"} ms (reload script, check every ${every} s)`,
      );
    });

    it(`THEN a new connection sees the renewed certificate within the check interval + 1 s (${every} ticks of a little over 1 s, the reload, the 50 ms poll)`, () => {
      assert.ok(
        seenAfterMs !== undefined,
        `no new connection saw the renewed certificate\n${bouncer.logs()}`,
      );
      assert.ok(seenAfterMs <= every * 1000 + 1000, `${seenAfterMs} ms`);
    });

    it("THEN the script saw the swap and sent SIGHUP; PgBouncer re-read its config", () => {
      assert.match(
        scriptLog(bouncer),
        new RegExp(
          `pgbouncer-reload: certificate files changed \\(${oldDataDir.replace(/\./g, "\\.")} -> ` +
            `${tlsDir.current().replace(/\./g, "\\.")}\\), reloading PgBouncer`,
        ),
      );
      const log = fs.readFileSync(bouncer.files[0].logfile, "utf8");
      assert.equal(log.match(/LOG got SIGHUP, re-reading config/g)?.length, 1, log);
    });

    it(`THEN the ${OPEN} connections opened before stay up: each runs a query on its own TLS session, with the first certificate`, async () => {
      const rows = await Promise.all(
        open.map((c) => c.query("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")),
      );
      for (const r of rows) assert.deepEqual(r.rows[0], [APP_USER, "t"]);
      open.forEach((c, i) => {
        assert.equal(c.closed, false);
        assert.equal(c.transport, sockets[i], "the connection runs on the socket it began with");
        assert.equal(c.peerCertificate?.serialNumber, first.serialNumber);
      });
      const stats: Conn = {
        ...app,
        user: prod.exporter.statsUser,
        database: "pgbouncer",
        password: STATS_PASSWORD,
      };
      const clients = (await psqlRows(stats, "SHOW CLIENTS")).filter((c) => c.user === APP_USER);
      assert.equal(clients.length, OPEN);
      assert.equal(logLines(bouncer, /closing because: (?!client close request)/).length, 0, bouncer.logs());
    });
  });

  describe("WHEN the script gets TERM (the kubelet stopping the container)", () => {
    it("THEN it is forwarded: PgBouncer shuts down once its clients have left", async () => {
      const pid = bouncer.pids()[0];
      const script = parentOf(pid);
      for (const c of open) c.close();
      open = [];
      process.kill(script, "SIGTERM");
      const started = Date.now();
      while (fs.existsSync(`/proc/${pid}`) && Date.now() - started < 10_000) await sleep(50);
      assert.equal(fs.existsSync(`/proc/${pid}`), false, "PgBouncer is still running 10 s after TERM");
      assert.match(fs.readFileSync(bouncer.files[0].logfile, "utf8"), /got SIGTERM, shutting down/);
      // the script ticks every second, so the container ends within about a second of PgBouncer
      const gone = Date.now();
      while (fs.existsSync(`/proc/${script}`) && Date.now() - gone < 5_000) await sleep(50);
      const alive = fs.existsSync(`/proc/${script}`);
      if (alive) for (const child of childrenOf(script)) process.kill(child, "SIGTERM");
      assert.equal(alive, false, "the reload script outlived PgBouncer by more than 5 s");
      assert.ok(Date.now() - gone < 2_000, `the script ended ${Date.now() - gone} ms after PgBouncer`);
    });
  });
});

function parentOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
}

function childrenOf(pid: number): number[] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text ? text.split(/\s+/).map(Number) : [];
  } catch {
    return [];
  }
}
