import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  POD_SCRIPT,
  atLeast,
  databasePeer,
  serviceNames,
  SERVER_SSL_MODES,
  tlsParameters,
} from "../../components/pgbouncer";

describe("the database's egress peer", () => {
  const cases: [string, ReturnType<typeof databasePeer>][] = [
    ["postgres", { kind: "service", namespace: "clipper" }],
    ["postgres.db", { kind: "service", namespace: "db" }],
    ["postgres.db.svc", { kind: "service", namespace: "db" }],
    ["postgres.db.svc.cluster.local", { kind: "service", namespace: "db" }],
    ["10.0.0.7", { kind: "ip", cidr: "10.0.0.7/32" }],
    ["clipper.abc.eu-west-1.rds.amazonaws.com", undefined],
    ["postgres.db.svc.other.domain", undefined],
  ];
  for (const [host, peer] of cases) {
    it(`${host} -> ${JSON.stringify(peer)}`, () =>
      assert.deepStrictEqual(databasePeer(host, "clipper", undefined), peer));
  }
  it("databaseCidrs win over the host's form", () =>
    assert.deepStrictEqual(databasePeer("postgres", "clipper", ["10.0.0.0/8"]), {
      kind: "cidrs",
      cidrs: ["10.0.0.0/8"],
    }));
});

describe("the TLS lines of the ini", () => {
  const files = { certFile: "/c", keyFile: "/k", protocols: "tlsv1.3" };
  it("always names both modes, and leaves out the files of a leg that is off", () => {
    assert.deepStrictEqual(
      tlsParameters({
        client: { sslmode: "disable", ...files },
        server: { sslmode: "disable", protocols: "tlsv1.3" },
      }),
      [
        ["client_tls_sslmode", "disable"],
        ["server_tls_sslmode", "disable"],
      ],
    );
    assert.deepStrictEqual(
      tlsParameters({
        client: { sslmode: "require", ...files },
        server: { sslmode: "verify-ca", caFile: "/ca", protocols: "tlsv1.3" },
      }),
      [
        ["client_tls_sslmode", "require"],
        ["client_tls_cert_file", "/c"],
        ["client_tls_key_file", "/k"],
        ["client_tls_ca_file", "/c"],
        ["client_tls_protocols", "tlsv1.3"],
        ["server_tls_sslmode", "verify-ca"],
        ["server_tls_ca_file", "/ca"],
        ["server_tls_protocols", "tlsv1.3"],
      ],
    );
  });
  it("orders the server modes as libpq does", () => {
    assert.ok(atLeast(SERVER_SSL_MODES, "verify-full", "verify-ca"));
    assert.ok(!atLeast(SERVER_SSL_MODES, "require", "verify-ca"));
  });
  it("names the Service four ways, dbHost last", () =>
    assert.deepStrictEqual(serviceNames("pgbouncer", "ns"), [
      "pgbouncer",
      "pgbouncer.ns",
      "pgbouncer.ns.svc",
      "pgbouncer.ns.svc.cluster.local",
    ]));
});

describe("the pod's script (pgbouncer-pod.sh), as the pod runs it", () => {
  it("passes shellcheck as POSIX sh", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-pod-script-"));
    const file = path.join(dir, "pgbouncer-pod.sh");
    // The text the pod runs (`sh -c`), as a file: the same check tools/shellcheck.sh makes of its source.
    fs.writeFileSync(file, `#!/bin/sh\n${POD_SCRIPT}\n`);
    const r = spawnSync("shellcheck", ["-s", "sh", file], { encoding: "utf8" });
    fs.rmSync(dir, { recursive: true, force: true });
    if (r.error) throw new Error("shellcheck is not installed (Debian package shellcheck)");
    assert.strictEqual(r.status, 0, r.stdout);
  });
});
