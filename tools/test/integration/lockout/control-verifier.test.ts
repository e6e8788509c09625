/**
 * The negative control, on every run: the verifier rendering (a SCRAM verifier in the auth file, which
 * PostgreSQL then holds too) locks correct clients out, and the generated sequences of
 * sequences-*.test.ts, dealt afresh, must find that on one and on two processes. If they stop finding it,
 * their passing on the other renderings proves nothing.
 * Setup: ../../support/lockout.ts; the sequences: ../../support/lockout-sequence.ts.
 */
import { describeLockout } from "../../support/lockout";
import { controlTests } from "../../support/lockout-sequence";

describeLockout(
  "the verifier rendering locks correct clients out",
  (ctx) => {
    for (const processes of [1, 2]) controlTests(ctx, processes, __filename);
  },
  { modes: ["verifier"], claim: "the negative control" },
);
