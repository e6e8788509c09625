/**
 * The first login after a start is a wrong password, on every process; PostgreSQL's password set any ordinary way.
 * Setup and modes: ../../support/lockout.ts.
 */
import * as assert from "node:assert/strict";
import { scramVerifier } from "../../../../components/credentials";
import { adminCommand, scramSecret, tryLogin } from "../../../harness";
import { PASSWORD, STALE, USER, describeLockout, refusedAsWrong, targets } from "../../support/lockout";

describeLockout("a wrong first login, and PostgreSQL's password set any ordinary way", (ctx) => {
  for (const processes of [1, 2]) {
    it(`${processes} process(es): a wrong password as the first login after a start locks nobody out`, async () => {
      const t = targets(await ctx.start(ctx.stack({ processes }), PASSWORD));
      // The wrong password reaches every process first, as a stale backend pod's would after a roll.
      for (const c of t.processes)
        refusedAsWrong(await tryLogin({ ...c, password: STALE }), "a wrong password");
      for (const c of [...t.processes, t.tcp, t.tcp, t.tcp]) {
        const o = await tryLogin(c);
        assert.ok(o.ok, `a correct login after a wrong first one was refused: ${o.ok ? "" : o.error}`);
      }
    });
  }

  it("PostgreSQL's password set any ordinary way: plain ALTER ROLE, or a verifier with its own salt (psql's \\password)", async function () {
    // The verifier mode requires PostgreSQL to hold the program's own verifier; auth_query reads PostgreSQL's.
    if (ctx.mode !== "password") this.skip();
    const b = await ctx.start(ctx.stack(), PASSWORD);
    const t = targets(b);
    // What psql's \password sends: a verifier computed by the client with a random salt and more iterations.
    for (const set of [`'${PASSWORD}'`, `'${scramSecret(PASSWORD, { iterations: 8192 })}'`]) {
      await ctx.pg.psql(`ALTER ROLE ${USER} PASSWORD ${set}`);
      await adminCommand(b.files[0], "RECONNECT");
      const o = await tryLogin(t.tcp);
      assert.ok(o.ok, `with PostgreSQL's password set by ${set.slice(0, 20)}…: ${o.ok ? "" : o.error}`);
    }
    // The program's own verifier is not what PostgreSQL must hold any more.
    assert.notEqual(
      await ctx.pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${USER}'`),
      scramVerifier(USER, PASSWORD),
    );
  });
});
