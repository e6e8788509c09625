import * as assert from "node:assert/strict";
import {
  EVENT_KINDS,
  FRESH,
  LIFETIME,
  LOGIN_KINDS,
  NOT_RIGHT,
  RESTART,
  SEQUENCES_PER_DEAL,
  type SequencePlan,
  planDeal,
  random,
  rounds,
  runSeed,
  variantSeed,
} from "../support/lockout-plan";

const SEEDS = Array.from({ length: 500 }, (_, i) => variantSeed(i * 7919, "password/2/0"));

describe("the lockout sequences' plan: stratified, seeded", () => {
  it("every deal holds every step kind, in every one of 500 seeds; server_lifetime passes only where it is 1 s", () => {
    for (const seed of SEEDS) {
      const plan = planDeal(random(seed));
      assert.equal(plan.length, SEQUENCES_PER_DEAL);
      const kinds = new Set(plan.flatMap((s) => s.steps.map((st) => st.kind)));
      for (const k of [...LOGIN_KINDS, ...EVENT_KINDS]) assert.ok(kinds.has(k), `seed ${seed}: no ${k}`);
      assert.deepEqual(
        plan.map((s) => s.pool).sort(),
        ["prod", "prod", "short lifetime"],
        `seed ${seed}: one short-lifetime sequence`,
      );
      for (const s of plan) {
        const lifetimes = s.steps.filter((st) => st.kind === LIFETIME).length;
        assert.equal(lifetimes, s.pool === "short lifetime" ? 1 : 0, `seed ${seed}`);
      }
    }
  });

  it("every login that is not a right one comes first after a start (a sequence's or a restart) once per deal", () => {
    for (const seed of SEEDS) {
      const plan = planDeal(random(seed));
      const firstAfterStart = plan.flatMap((s: SequencePlan) => [
        s.then[0],
        ...s.steps.filter((st) => st.kind === RESTART).map((st) => st.then[0]),
      ]);
      assert.deepEqual([...firstAfterStart].sort(), [...NOT_RIGHT].sort(), `seed ${seed}`);
    }
  });

  it("only a start, a restart, a reload or a reconnect is followed by logins before its check: 1 to 3, none a right one", () => {
    const lengths = new Set<number>();
    for (const seed of SEEDS) {
      for (const s of planDeal(random(seed))) {
        for (const then of [s.then, ...s.steps.filter((st) => FRESH.has(st.kind)).map((st) => st.then)]) {
          assert.ok(then.length >= 1 && then.length <= 3, `seed ${seed}: ${then.length}`);
          lengths.add(then.length);
          for (const k of then) assert.ok(NOT_RIGHT.includes(k), `seed ${seed}: ${k}`);
        }
        for (const st of s.steps) if (!FRESH.has(st.kind)) assert.deepEqual(st.then, [], `seed ${seed}`);
      }
    }
    assert.deepEqual([...lengths].sort(), [1, 2, 3]);
  });

  it("a seed replays its plan; seeds and variants give other plans", () => {
    assert.deepEqual(planDeal(random(SEEDS[0])), planDeal(random(SEEDS[0])));
    const orders = new Set(
      SEEDS.map((seed) => JSON.stringify(planDeal(random(seed)).map((s) => s.steps.map((st) => st.kind)))),
    );
    assert.equal(orders.size, SEEDS.length);
    assert.notEqual(variantSeed(42, "password/1/0"), variantSeed(42, "password/2/0"));
    assert.notEqual(variantSeed(42, "password/1/0"), variantSeed(42, "auth-query/1/0"));
    assert.notEqual(variantSeed(42, "password/1/0"), variantSeed(43, "password/1/0"));
  });

  it("CLIPPER_LOCKOUT_SEED replays a run, a fresh one is drawn without it; CLIPPER_LOCKOUT_ROUNDS counts deals", () => {
    assert.equal(runSeed({ CLIPPER_LOCKOUT_SEED: "1234567" }), 1234567);
    assert.equal(runSeed({ CLIPPER_LOCKOUT_SEED: "4294967295" }), 4294967295);
    for (const bad of ["-1", "1.5", "4294967296", "abc", "1e3"]) {
      assert.throws(() => runSeed({ CLIPPER_LOCKOUT_SEED: bad }), /CLIPPER_LOCKOUT_SEED/);
    }
    const drawn = new Set(Array.from({ length: 20 }, () => runSeed({})));
    assert.ok(drawn.size > 15, `fresh seeds: ${[...drawn].join(",")}`);
    assert.equal(rounds({}), 1);
    assert.equal(rounds({ CLIPPER_LOCKOUT_ROUNDS: "5" }), 5);
    for (const bad of ["0", "-2", "x"]) {
      assert.throws(() => rounds({ CLIPPER_LOCKOUT_ROUNDS: bad }), /CLIPPER_LOCKOUT_ROUNDS/);
    }
  });
});
