/**
 * What the generated login sequences of the lockout tests run (./lockout-sequence.ts runs it): the step
 * kinds, the run's seed, and the stratified plan a seed deals. Pure, so that tools/test/unit/lockout-plan.test.ts
 * can check over many seeds that every deal covers what it claims.
 */
import * as crypto from "node:crypto";

/** Logins of every kind a backend or the exporter sends; the three `dropped` ones walk away halfway. */
export const LOGIN_KINDS = [
  "right",
  "wrong",
  "unknown user",
  "dropped after startup",
  "dropped after client-first",
  "dropped after client-final",
  "stats user, right",
  "stats user, wrong",
  "mixed burst",
] as const;
export type LoginKind = (typeof LOGIN_KINDS)[number];

/** The logins that are not a right one (a mixed burst holds some): what comes first after a start. */
export const NOT_RIGHT: readonly LoginKind[] = LOGIN_KINDS.filter(
  (k) => k !== "right" && k !== "stats user, right",
);

export const RESTART = "PgBouncer restart (SIGINT)";
export const LIFETIME = "server_lifetime passes";

/** What happens around the logins. */
export const EVENT_KINDS = [
  RESTART,
  "RELOAD",
  "RECONNECT",
  "PostgreSQL restart (fast)",
  "PostgreSQL restart (immediate)",
  LIFETIME,
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
export type StepKind = LoginKind | EventKind;

/** After these the pooler is fresh again (a new process, a re-read config, new server connections). */
export const FRESH: ReadonlySet<StepKind> = new Set<StepKind>([RESTART, "RELOAD", "RECONNECT"]);

/** The pool of the sequence that lets `server_lifetime` pass; the others run prod's. */
export const SHORT_LIFETIME_POOL = { serverLifetimeSeconds: 1, serverIdleTimeoutSeconds: 1 } as const;

export interface PlannedStep {
  readonly kind: StepKind;
  /** After a fresh step, the logins that come before the check (none of them a right one); else empty. */
  readonly then: readonly LoginKind[];
}

/** One sequence: a fresh PgBouncer, the logins before the first check, then its steps, each checked. */
export interface SequencePlan {
  readonly pool: "prod" | "short lifetime";
  readonly then: readonly LoginKind[];
  readonly steps: readonly PlannedStep[];
}

/** Sequences per deal: one on the short-lifetime pool, two on prod's. */
export const SEQUENCES_PER_DEAL = 3;

/**
 * One deal: {@link SEQUENCES_PER_DEAL} sequences that together hold every step kind at least once (every
 * login kind, a reload, a reconnect, PostgreSQL's fast and immediate restarts, and `server_lifetime`
 * passing in the short-lifetime sequence), in an order drawn from `rnd`, and enough PgBouncer restarts that
 * every kind of {@link NOT_RIGHT} login is the first one after a start (a sequence's or a restart's) once.
 * After a start, a reload or a reconnect, 0 to 2 more drawn logins that are not right ones follow before the
 * check. Everything here is drawn from `rnd`; so is what a step draws when it runs (its targets, a burst).
 */
export function planDeal(rnd: () => number): SequencePlan[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const shuffle = <T>(xs: readonly T[]): T[] => {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };
  const pools = shuffle<SequencePlan["pool"]>([
    "short lifetime",
    ...Array<SequencePlan["pool"]>(SEQUENCES_PER_DEAL - 1).fill("prod"),
  ]);
  const restarts = NOT_RIGHT.length - SEQUENCES_PER_DEAL;
  const kinds: StepKind[] = [
    ...LOGIN_KINDS,
    ...EVENT_KINDS.filter((k) => k !== RESTART && k !== LIFETIME),
    ...Array<StepKind>(Math.max(1, restarts)).fill(RESTART),
  ];
  const steps: StepKind[][] = pools.map(() => []);
  for (const k of shuffle(kinds)) steps[Math.floor(rnd() * steps.length)].push(k);
  const short = steps[pools.indexOf("short lifetime")];
  short.splice(Math.floor(rnd() * (short.length + 1)), 0, LIFETIME);

  const firsts = shuffle(NOT_RIGHT);
  const then = (first: LoginKind | undefined): LoginKind[] => [
    first ?? pick(NOT_RIGHT),
    ...Array.from({ length: Math.floor(rnd() * 3) }, () => pick(NOT_RIGHT)),
  ];
  return pools.map((pool, i) => ({
    pool,
    then: then(firsts.shift()),
    steps: steps[i].map((kind) => ({
      kind,
      then: kind === RESTART ? then(firsts.shift()) : FRESH.has(kind) ? then(undefined) : [],
    })),
  }));
}

/** Deterministic pseudo-random numbers (mulberry32), so that a seed replays a sequence. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of one variant's deal: the run's seed mixed with the variant's name (FNV-1a). */
export function variantSeed(runSeed: number, variant: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(variant, "utf8")) h = Math.imul(h ^ ch, 0x01000193) >>> 0;
  return (h ^ runSeed) >>> 0;
}

/** `CLIPPER_LOCKOUT_SEED` (a whole number below 2^32) to replay a run; else a fresh one. */
export function runSeed(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.CLIPPER_LOCKOUT_SEED;
  if (text === undefined || text === "") return crypto.randomInt(2 ** 32);
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n >= 2 ** 32) {
    throw new Error(`CLIPPER_LOCKOUT_SEED must be a whole number below 2^32, got "${text}"`);
  }
  return n;
}

/** `CLIPPER_LOCKOUT_ROUNDS`: deals per variant (default 1, what every `npm test` runs). */
export function rounds(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.CLIPPER_LOCKOUT_ROUNDS ?? "1";
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1) {
    throw new Error(`CLIPPER_LOCKOUT_ROUNDS must be a whole number of at least 1, got "${text}"`);
  }
  return n;
}
