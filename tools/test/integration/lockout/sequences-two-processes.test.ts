/**
 * Generated login sequences on two PgBouncer processes (one port, `so_reuseport`, peered): after every step
 * a correct client gets in.
 * Setup and modes: ../../support/lockout.ts; the sequences: ../../support/lockout-sequence.ts.
 */
import { describeLockout } from "../../support/lockout";
import { sequenceTests } from "../../support/lockout-sequence";

describeLockout("generated sequences, two processes", (ctx) => {
  sequenceTests(ctx, 2, __filename);
});
