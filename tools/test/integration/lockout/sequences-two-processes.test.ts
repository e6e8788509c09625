/**
 * Generated login sequences on two PgBouncer processes (one port, `so_reuseport`, peered), with prod's
 * server_lifetime and with one of 1 s: after every step a correct client gets in.
 * Setup and modes: ../../support/lockout.ts; the sequences: ../../support/lockout-sequence.ts.
 */
import { describeLockout } from "../../support/lockout";
import { seeds, sequenceTests } from "../../support/lockout-sequence";

describeLockout("generated sequences, two processes", (ctx) => {
  sequenceTests(ctx, [
    { name: "2 processes, prod's pool", processes: 2, seeds: seeds(2000, 3, ctx.full) },
    ...(ctx.full
      ? [
          {
            name: "2 processes, server_lifetime 1 s",
            processes: 2,
            pool: { serverLifetimeSeconds: 1, serverIdleTimeoutSeconds: 1 },
            seeds: seeds(3000, 2, ctx.full),
          },
        ]
      : []),
  ]);
});
