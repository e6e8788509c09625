/**
 * Generated login sequences for the lockout tests (../integration/lockout/sequences-*.test.ts): seeded, so a
 * failing one is replayed by its seed.
 */
import * as assert from "node:assert/strict";
import type { StackSettings } from "../../../stacks/settings";
import {
  type Conn,
  type LoginOutcome,
  abandonLogin,
  adminCommand,
  burst,
  recoveryAfterOutageMs,
  sleep,
  tryLogin,
} from "../../harness";
import { type HandshakeStage, PgClient } from "../../harness/pgwire";
import {
  EXTRA_SEQUENCES,
  type LockoutContext,
  PASSWORD,
  STALE,
  STATS_PASSWORD,
  random,
  refusedAsWrong,
  targets,
} from "./lockout";

/** `fresh`: the pooler just started, reloaded or reconnected, so the next logins come "first" again. */
type Step = { name: string; fresh?: boolean; run: () => Promise<void> };
const STAGES: readonly HandshakeStage[] = ["startup", "client-first", "client-final"];

/**
 * One sequence on a fresh PgBouncer. Steps are drawn from logins of every kind (right, wrong, unknown
 * user, dropped halfway, the stats user's right and wrong, mixed concurrent bursts, on any process) and
 * from what happens around them (PgBouncer restart, RELOAD, RECONNECT, PostgreSQL restarted or down,
 * server_lifetime expiry). A start, restart, reload or reconnect is followed by 1 to 3 random logins that
 * are not right ones before the check, so that wrong and dropped logins also come first after those.
 */
export async function runSequence(
  ctx: LockoutContext,
  seed: number,
  s: StackSettings,
  length: number,
): Promise<void> {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const done: string[] = [`seed ${seed}: fresh start`];
  const b = await ctx.start(s, PASSWORD);
  const t = targets(b);
  const all = [t.tcp, ...t.processes];
  const anyTarget = () => (rnd() < 0.4 ? t.tcp : pick(t.processes));
  const stats = (password: string): Conn => ({
    host: b.host,
    port: b.port,
    user: s.exporter.statsUser,
    database: "pgbouncer",
    password,
  });
  const correct = (o: LoginOutcome, what: string) =>
    assert.ok(o.ok, `${what} was refused (${o.ok ? "" : o.error}); sequence:\n${done.join("\n")}`);
  const login = async (kind: "right" | "wrong" | "unknown" | "drop") => {
    const c = anyTarget();
    if (kind === "right") return correct(await tryLogin(c), "a correct login");
    if (kind === "wrong")
      return refusedAsWrong(await tryLogin({ ...c, password: STALE }), "a wrong password");
    if (kind === "unknown")
      return refusedAsWrong(await tryLogin({ ...c, user: "nobody_here" }), "an unknown user");
    const stage = pick(STAGES);
    const password = rnd() < 0.5 ? STALE : PASSWORD;
    done.push(`  (dropped after ${stage}, ${password === STALE ? "wrong" : "right"} password)`);
    await abandonLogin({ ...c, password }, stage);
  };

  const logins: Step[] = [
    { name: "right", run: () => login("right") },
    { name: "wrong", run: () => login("wrong") },
    { name: "unknown user", run: () => login("unknown") },
    { name: "dropped halfway", run: () => login("drop") },
    {
      name: "stats user, right",
      run: async () => correct(await tryLogin(stats(STATS_PASSWORD)), "the stats user"),
    },
    {
      name: "stats user, wrong",
      run: async () => refusedAsWrong(await tryLogin(stats(STALE)), "the stats user's wrong password"),
    },
    {
      name: "mixed burst",
      run: async () => {
        const kinds = Array.from({ length: 5 + Math.floor(rnd() * 20) }, () =>
          pick(["right", "wrong", "unknown", "drop"] as const),
        );
        done.push(`  (${kinds.join(",")})`);
        await Promise.all(kinds.map(login));
      },
    },
  ];
  const notRight = logins.filter((l) => l.name !== "right" && l.name !== "stats user, right");
  const events: Step[] = [
    {
      name: "PgBouncer restart (SIGINT)",
      fresh: true,
      run: async () => void (await b.restart("SIGINT")),
    },
    {
      name: "RELOAD",
      fresh: true,
      run: async () => {
        for (const f of b.files) await adminCommand(f, "RELOAD");
      },
    },
    {
      name: "RECONNECT",
      fresh: true,
      run: async () => {
        for (const f of b.files) await adminCommand(f, "RECONNECT");
      },
    },
    ...(["fast", "immediate"] as const).map((how): Step => ({
      name: `PostgreSQL restart (${how}), clients logging in meanwhile`,
      run: async () => {
        // PostgreSQL going away is the one documented exception: a server login it cuts keeps new
        // clients out until a server login succeeds again. The backends keep pooled connections to
        // every process, as in production, so PgBouncer retries on its own, and past the bound
        // (recoveryAfterOutageMs; the tests above pin it) nothing may be left of the outage.
        const held = await Promise.all(t.processes.map((c) => PgClient.connect(c)));
        let inFlight: Promise<LoginOutcome[]> | undefined;
        await ctx.pg.restart({
          mode: how,
          downMs: how === "fast" ? 0 : 300,
          whileDown: () => void (inFlight = burst(all, 6)),
        });
        const outcomes = await inFlight;
        done.push(`  (meanwhile: ${outcomes?.map((o) => (o.ok ? "served" : o.error)).join("; ")})`);
        await sleep(recoveryAfterOutageMs(s.pool.serverLoginRetrySeconds));
        for (const h of held) h.close();
      },
    })),
  ];
  if (s.pool.serverLifetimeSeconds <= 2) {
    events.push({
      name: "server_lifetime passes",
      run: () => sleep(s.pool.serverLifetimeSeconds * 1000 + 200),
    });
  }
  const firstContact = async () => {
    for (let i = 1 + Math.floor(rnd() * 3); i > 0; i--) {
      const l = pick(notRight);
      done.push(`  then ${l.name}`);
      await l.run();
    }
  };

  await firstContact();
  for (let i = 0; i < length; i++) {
    for (const c of all) {
      const o = await tryLogin(c);
      if (!o.ok) {
        const log = b
          .logs()
          .split("\n")
          .filter((l) => /ERROR|WARNING|closing because/.test(l));
        correct(o, `the check after "${done[done.length - 1].trim()}"\n${log.slice(-6).join("\n")}\n`);
      }
    }
    // An outage costs seconds (the documented bound); each is drawn a third as often as the other events.
    const weighted = events.flatMap((e) => (e.name.startsWith("PostgreSQL") ? [e] : [e, e, e]));
    const step = rnd() < 0.65 ? pick(logins) : pick(weighted);
    done.push(step.name);
    await step.run();
    if (step.fresh) await firstContact();
  }
}

/** Seeds `base`, `base + 1`, …: `n` of them in every `npm test`, CLIPPER_LOCKOUT_SEQUENCES of them on request. */
export function seeds(base: number, n: number, full: boolean): number[] {
  return Array.from({ length: EXTRA_SEQUENCES || (full ? n : n - 1) }, (_, i) => base + i);
}

/** One `it` per variant: its sequences of 8 steps, each on a fresh PgBouncer, one after the other. */
export function sequenceTests(
  ctx: LockoutContext,
  variants: readonly {
    name: string;
    processes: number;
    pool?: Partial<StackSettings["pool"]>;
    seeds: number[];
  }[],
): void {
  describe("generated login sequences: after every step a correct client gets in", () => {
    for (const v of variants) {
      it(`${v.name}: ${v.seeds.length} sequences of 8 steps (seeds ${v.seeds[0]}..${v.seeds[v.seeds.length - 1]})`, async () => {
        for (const seed of v.seeds) {
          await runSequence(ctx, seed, ctx.stack({ processes: v.processes, pool: v.pool }), 8);
          for (const b of ctx.running.splice(0)) await b.stop("SIGQUIT");
        }
      });
    }
  });
}
