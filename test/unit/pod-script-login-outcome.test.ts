/**
 * How the pod's script reads PgBouncer's log lines about server logins (pgbouncer-pod.sh, `login_outcome`):
 * what keeps a change out or a pod unready (`broken`), what a restarting PostgreSQL gives (`transient`), and a
 * login that went through (`ok`). The lines are PgBouncer 1.25.2's own wording (src/server.c, src/objects.c,
 * src/sbuf.c), as its log prints them; the script is asked through `--login-outcome`, run by real `/bin/sh`.
 */
import * as assert from "assert";
import { spawnSync } from "child_process";
import { POD_SCRIPT, POD_SCRIPT_NAME } from "../../components/pgbouncer";

function outcome(line: string): string {
  const r = spawnSync("/bin/sh", ["-c", POD_SCRIPT, POD_SCRIPT_NAME, "--login-outcome", line], {
    encoding: "utf8",
    env: {
      PATH: "/usr/bin:/bin",
      PGBOUNCER_POD_NAME: "pgbouncer-0",
      PGBOUNCER_PROCESS: "1",
      PGBOUNCER_PROCESSES: "1",
      PGBOUNCER_PORT: "6432",
      PGBOUNCER_LISTEN_ADDR: "0.0.0.0",
      PGBOUNCER_SOURCES: "",
      PGBOUNCER_CURRENT: "/tmp/none/current",
      PGBOUNCER_SOCKET_DIR: "/tmp/none/1",
      PGBOUNCER_CHECK_SECONDS: "10",
      PGBOUNCER_CANARY: "",
      PGBOUNCER_CANARY_HOLD_SECONDS: "0",
      PGBOUNCER_FAILURE_SECONDS: "10",
      PGBOUNCER_DRAIN_SECONDS: "0",
      PGBOUNCER_CHECK_LOGINS: "1",
    },
  });
  assert.strictEqual(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const AT = "2026-12-06 22:24:09.361 UTC [9583]";
const S = "S-0x55891a75afc0: clipper/clipper_app@10.0.0.5:5432";

describe("the pod script's reading of PgBouncer's server-login log lines", () => {
  const cases: [string, string, string][] = [
    ["a login that went through", `${AT} DEBUG ${S} server login ok, start accepting queries`, "ok"],
    [
      "a refused password",
      `${AT} WARNING server login failed: FATAL password authentication failed for user "clipper_app"`,
      "broken",
    ],
    [
      "a certificate that does not verify",
      `${AT} WARNING TLS handshake error: handshake failed: error:0A000086:SSL routines::certificate verify failed`,
      "broken",
    ],
    [
      "a host that does not resolve",
      `${AT} LOG ${S} closing because: server DNS lookup failed (age=0s)`,
      "broken",
    ],
    ["PostgreSQL without TLS", `${AT} LOG ${S} closing because: server refused SSL (age=0s)`, "broken"],
    [
      "PostgreSQL starting",
      `${AT} WARNING server login failed: FATAL the database system is starting up`,
      "transient",
    ],
    [
      "PostgreSQL stopping",
      `${AT} WARNING server login failed: FATAL the database system is shutting down`,
      "transient",
    ],
    [
      "PostgreSQL full",
      `${AT} WARNING server login failed: FATAL sorry, too many clients already`,
      "transient",
    ],
    ["a refused connection", `${AT} LOG ${S} closing because: connect failed (age=0s)`, "transient"],
    [
      "a connection cut as TLS starts (PostgreSQL going down, seen in a restart under load)",
      `${AT} LOG ${S} closing because: TLS startup failed (age=0s)`,
      "transient",
    ],
    ["anything else", `${AT} LOG stats: 12 xacts/s, 12 queries/s`, "none"],
  ];
  for (const [what, line, want] of cases) {
    it(`reads ${what} as ${want}`, () => {
      assert.strictEqual(outcome(line), want);
    });
  }
});
