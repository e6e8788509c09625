/**
 * Generated login sequences for the lockout tests (../integration/lockout/sequences-*.test.ts and
 * control-verifier.test.ts): each run deals a fresh stratified plan (./lockout-plan.ts) per variant from a
 * seed it prints; `CLIPPER_LOCKOUT_SEED=<seed>` replays it, `CLIPPER_LOCKOUT_ROUNDS=<n>` deals n plans per
 * variant.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import {
  type Conn,
  type LoginOutcome,
  type PgBouncerHandle,
  abandonLogin,
  adminCommand,
  burst,
  hasServer,
  recoveryAfterOutageMs,
  sleep,
  tryLogin,
  untilServer,
} from "../../harness";
import { type HandshakeStage, PgClient } from "../../harness/pgwire";
import {
  type LockoutContext,
  PASSWORD,
  STALE,
  STATS_PASSWORD,
  USER,
  refusedAsWrong,
  targets,
} from "./lockout";
import {
  type LoginKind,
  type PlannedStep,
  type SequencePlan,
  LIFETIME,
  RESTART,
  SEQUENCES_PER_DEAL,
  SHORT_LIFETIME_POOL,
  planDeal,
  random,
  rounds,
  runSeed,
  variantSeed,
} from "./lockout-plan";

/** This run's seed: drawn afresh when the module loads (one per mocha worker), or CLIPPER_LOCKOUT_SEED. */
export const RUN_SEED = runSeed();
export const ROUNDS = rounds();

/** A correct login refused: what the invariant forbids, and what the verifier control must find. */
export class LockoutFound extends Error {
  constructor(
    /** Which login, after which steps. */
    readonly what: string,
    /** PgBouncer's words. */
    readonly refusal: string,
    message: string,
  ) {
    super(message);
    this.name = "LockoutFound";
  }
}

/**
 * How a deal is reported: its steps so far, how to replay it, how many checks it passed, and how many first
 * logins after a PostgreSQL restart the lookup pool refused (auth_query mode's documented exception).
 */
interface Report {
  readonly replay: string;
  readonly done: string[];
  checks: number;
  lookupRefusals: number;
}

/** One sequence of `plan` on a fresh PgBouncer of `s`; throws {@link LockoutFound} at a refused correct login. */
async function runSequence(
  ctx: LockoutContext,
  rnd: () => number,
  s: ReturnType<LockoutContext["stack"]>,
  plan: SequencePlan,
  report: Report,
): Promise<void> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const { done } = report;
  done.push(`sequence on ${plan.pool === "prod" ? "prod's pool" : "server_lifetime 1 s"}: fresh start`);
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
  const refused = (error: string, what: string): never => {
    throw new LockoutFound(
      `${what}, after: ${done.map((d) => d.trim()).join(" / ")}`,
      error,
      `${what} was refused (${error})\n${logTail(b)}\nreplay: ${report.replay}\nsequence:\n${done.join("\n")}`,
    );
  };
  const correct = (o: LoginOutcome, what: string): void => {
    if (!o.ok) refused(o.error, what);
  };
  const login = async (kind: "right" | "wrong" | "unknown" | HandshakeStage): Promise<void> => {
    const c = anyTarget();
    if (kind === "right") return correct(await tryLogin(c), "a correct login");
    if (kind === "wrong")
      return refusedAsWrong(await tryLogin({ ...c, password: STALE }), "a wrong password");
    if (kind === "unknown")
      return refusedAsWrong(await tryLogin({ ...c, user: "nobody_here" }), "an unknown user");
    const password = rnd() < 0.5 ? STALE : PASSWORD;
    done.push(`  (dropped after ${kind}, ${password === STALE ? "wrong" : "right"} password)`);
    await abandonLogin({ ...c, password }, kind);
  };
  const logins: Record<LoginKind, () => Promise<void>> = {
    right: () => login("right"),
    wrong: () => login("wrong"),
    "unknown user": () => login("unknown"),
    "dropped after startup": () => login("startup"),
    "dropped after client-first": () => login("client-first"),
    "dropped after client-final": () => login("client-final"),
    "stats user, right": async () => correct(await tryLogin(stats(STATS_PASSWORD)), "the stats user"),
    "stats user, wrong": async () =>
      refusedAsWrong(await tryLogin(stats(STALE)), "the stats user's wrong password"),
    "mixed burst": async () => {
      const kinds = Array.from({ length: 5 + Math.floor(rnd() * 20) }, () =>
        pick(["right", "wrong", "unknown", "startup", "client-first", "client-final"] as const),
      );
      done.push(`  (${kinds.join(",")})`);
      await Promise.all(kinds.map(login));
    },
  };
  const postgresRestart = async (how: "fast" | "immediate"): Promise<void> => {
    // PostgreSQL going away is the one documented exception: a server login it cuts keeps new clients out
    // until a server login succeeds again. The backends keep pooled connections to every process, as in
    // production, so PgBouncer retries on its own, and from the bound after PostgreSQL accepts again
    // (recoveryAfterOutageMs; outage.test.ts pins it) nothing may be left of the outage.
    const held: PgClient[] = [];
    try {
      for (const c of t.processes) {
        const h = await PgClient.connect(c).catch((e: Error) => e);
        if (h instanceof Error) return refused(h.message, "a backend's pooled connection");
        held.push(h);
      }
      let inFlight: Promise<LoginOutcome[]> | undefined;
      await ctx.pg.restart({
        mode: how,
        downMs: how === "fast" ? 0 : 300,
        whileDown: () => void (inFlight = burst(all, 6)),
      });
      // PostgreSQL accepted again at the latest now: the bound counts from here, and the check comes at it,
      // not after the logins of the outage (they may still wait for PgBouncer's next server login).
      const back = Date.now();
      await sleep(Math.max(0, back + recoveryAfterOutageMs(s.pool.serverLoginRetrySeconds) - Date.now()));
      if (ctx.mode === "auth-query") await lookupPoolAfterOutage(how);
      await check(`PostgreSQL restart (${how}), from the bound on`);
      const outcomes = await inFlight;
      done.push(`  (meanwhile: ${outcomes?.map((o) => (o.ok ? "served" : o.error)).join("; ")})`);
    } finally {
      for (const h of held) h.close();
    }
  };
  // auth_query mode's one documented exception (components/credentials/README.md, "PostgreSQL down"): the
  // lookup runs in auth_user's pool, which no client stays connected to, so a server login of it that the
  // outage failed is retried only when a login needs it, and PgBouncer refuses that login
  // (check_fast_fail). Production sees the same: at most the first login per process after PostgreSQL is
  // back. Allowed only as exactly that: the first login to each process, refused for the failing server
  // login, while the application's pool (the backends stay connected to it) has its server, so the refusal
  // cannot be that pool's; the refused login then starts the lookup pool's server login, and `check` after
  // it allows nothing.
  const lookupPoolAfterOutage = async (how: string): Promise<void> => {
    const lookupUser = s.credentials.authQuery?.user ?? "";
    const what = (i: number) => `the first login to process ${i + 1} after PostgreSQL's restart (${how})`;
    for (const [i, c] of t.processes.entries()) {
      const first = await tryLogin(c);
      if (first.ok) continue;
      if (!/server login has been failing/.test(first.error)) refused(first.error, what(i));
      if (!hasServer(await adminCommand(b.files[i], "SHOW SERVERS"), USER)) {
        refused(first.error, `${what(i)}, with no server in the application's pool at the bound`);
      }
      report.lookupRefusals++;
      done.push(`  (process ${i + 1}'s first login refused by the lookup pool: ${first.error})`);
      // The refused login started the lookup pool's server login: wait for it on the console.
      await untilServer(b.files[i], lookupUser).catch((e: Error) =>
        refused(first.error, `${what(i)}: ${e.message}`),
      );
    }
  };
  const events: Record<Exclude<PlannedStep["kind"], LoginKind>, () => Promise<void>> = {
    [RESTART]: async () => void (await b.restart("SIGINT")),
    RELOAD: async () => {
      for (const f of b.files) await adminCommand(f, "RELOAD");
    },
    RECONNECT: async () => {
      for (const f of b.files) await adminCommand(f, "RECONNECT");
    },
    "PostgreSQL restart (fast)": () => postgresRestart("fast"),
    "PostgreSQL restart (immediate)": () => postgresRestart("immediate"),
    [LIFETIME]: () => sleep(s.pool.serverLifetimeSeconds * 1000 + 200),
  };
  const run = (kind: PlannedStep["kind"]): Promise<void> =>
    kind in logins ? logins[kind as LoginKind]() : events[kind as keyof typeof events]();
  const then = async (kinds: readonly LoginKind[]): Promise<void> => {
    for (const k of kinds) {
      done.push(`  then ${k}`);
      await run(k);
    }
  };
  const check = async (after: string): Promise<void> => {
    for (const c of all) correct(await tryLogin(c), `the check after "${after}"`);
    report.checks++;
  };

  await then(plan.then);
  await check("fresh start");
  for (const step of plan.steps) {
    done.push(step.kind);
    await run(step.kind);
    await then(step.then);
    await check(step.kind);
  }
}

function logTail(b: PgBouncerHandle): string {
  const lines = b
    .logs()
    .split("\n")
    .filter((l) => /ERROR|WARNING|closing because/.test(l));
  return lines.slice(-6).join("\n");
}

/** Runs the plan of one deal, sequence after sequence, each on a fresh PgBouncer stopped after it. */
async function runDeal(ctx: LockoutContext, processes: number, round: number, file: string): Promise<Report> {
  const variant = `${ctx.mode}/${processes}/${round}`;
  const rnd = random(variantSeed(RUN_SEED, variant));
  const plan = planDeal(rnd);
  const report: Report = {
    replay: `CLIPPER_LOCKOUT_SEED=${RUN_SEED}${round > 0 ? ` CLIPPER_LOCKOUT_ROUNDS=${round + 1}` : ""} npx mocha ${fromRoot(file)} (variant ${variant})`,
    done: [],
    checks: 0,
    lookupRefusals: 0,
  };
  try {
    for (const seq of plan) {
      const pool = seq.pool === "prod" ? undefined : SHORT_LIFETIME_POOL;
      await runSequence(ctx, rnd, ctx.stack({ processes, pool }), seq, report);
      for (const b of ctx.running.splice(0)) await b.stop("SIGQUIT");
    }
  } finally {
    for (const b of ctx.running.splice(0)) await b.stop("SIGQUIT");
  }
  return report;
}

const processWords = (n: number) => (n === 1 ? "1 process" : `${n} processes`);

/** A test file's path from the project's root, where the replay command runs. */
const fromRoot = (file: string) => path.relative(path.resolve(__dirname, "../../.."), file);

/**
 * One `it` per variant: {@link ROUNDS} deals of {@link SEQUENCES_PER_DEAL} sequences, a correct login on
 * every process and the TCP port after every step, the last one included. `file`: the test file's
 * `__filename`, for the replay command.
 */
export function sequenceTests(ctx: LockoutContext, processes: number, file: string): void {
  describe("generated login sequences: after every step, the last included, a correct client gets in", () => {
    it(`${processWords(processes)}: ${ROUNDS} deal(s) of ${SEQUENCES_PER_DEAL} sequences with every step kind, every not-right login first after a start (seed ${RUN_SEED})`, async () => {
      for (let r = 0; r < ROUNDS; r++) {
        const { checks, lookupRefusals, replay } = await runDeal(ctx, processes, r, file);
        const lookup = lookupRefusals
          ? `; ${lookupRefusals} first login(s) after a PostgreSQL restart refused by the lookup pool (documented)`
          : "";
        console.log(`      ${checks} checks passed${lookup}; replay: ${replay}`);
      }
    });
  });
}

/**
 * The negative control: on a rendering that does lock clients out (the verifier in the auth file), the same
 * sequences must find it. One deal, stopped at the first correct login refused.
 */
export function controlTests(ctx: LockoutContext, processes: number, file: string): void {
  it(`${processWords(processes)}: the generated sequences find the lockout (seed ${RUN_SEED})`, async () => {
    let found: LockoutFound | undefined;
    try {
      await runDeal(ctx, processes, 0, file);
    } catch (e) {
      if (!(e instanceof LockoutFound)) throw e;
      found = e;
    }
    assert.ok(
      found,
      `a whole deal found no lockout on the ${ctx.mode} rendering: the sequences have lost their power ` +
        `(replay: CLIPPER_LOCKOUT_SEED=${RUN_SEED} npx mocha ${fromRoot(file)})`,
    );
    console.log(`      found: ${found.what}: ${found.refusal}`);
  });
}
