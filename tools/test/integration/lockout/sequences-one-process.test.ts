/**
 * Generated login sequences on one PgBouncer process: after every step a correct client gets in.
 * Setup and modes: ../../support/lockout.ts; the sequences: ../../support/lockout-sequence.ts.
 */
import { describeLockout } from "../../support/lockout";
import { sequenceTests } from "../../support/lockout-sequence";

describeLockout("generated sequences, one process", (ctx) => {
  sequenceTests(ctx, 1, __filename);
});
