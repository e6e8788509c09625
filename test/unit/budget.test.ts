import * as assert from "assert";
import { serverLoginChecks } from "../../components/credentials";
import { poolBudget } from "../../components/pgbouncer";
import { loadStackSettings } from "../../stacks/settings";

describe("pool budget", () => {
  const base = {
    replicas: 2,
    surge: 1,
    processesPerPod: 1,
    serverCapPerProcess: 50,
    checkLoginsPerProcess: 0,
    postgresMaxConnections: 200,
    postgresReservedConnections: 20,
  };

  it("counts every replica and the surge pod at the full per-process cap", () => {
    const b = poolBudget(base);
    assert.deepStrictEqual([b.perPod, b.peak, b.available, b.fits], [50, 150, 180, true]);
  });

  it("multiplies by the processes in a pod", () => {
    const b = poolBudget({ ...base, processesPerPod: 2 });
    assert.deepStrictEqual([b.perPod, b.peak, b.fits], [100, 300, false]);
  });

  it("fits exactly at the limit and not one above", () => {
    assert.strictEqual(poolBudget({ ...base, postgresMaxConnections: 170 }).fits, true);
    assert.strictEqual(poolBudget({ ...base, postgresMaxConnections: 169 }).fits, false);
  });

  it("counts the server-login check's connections of every process beside its cap", () => {
    const b = poolBudget({ ...base, checkLoginsPerProcess: 2 });
    assert.deepStrictEqual([b.perPod, b.peak, b.fits], [52, 156, true]);
    assert.strictEqual(
      poolBudget({ ...base, checkLoginsPerProcess: 2, postgresMaxConnections: 175 }).fits,
      false,
    );
    assert.strictEqual(
      b.arithmetic,
      "(2 replicas + 1 surge pod) x 1 process(es) per pod x (50 server connections + 2 of the server-login " +
        "check) per process = 156; PostgreSQL allows 200 max_connections - 20 reserved = 180",
    );
  });

  it("checks as many logins as the auth file holds passwords for", () => {
    const s = loadStackSettings("prod").credentials;
    assert.ok(s.secondLogin, "prod has a second login");
    assert.strictEqual(serverLoginChecks(s), 2);
    assert.strictEqual(serverLoginChecks({ ...s, secondLogin: undefined }), 1);
    assert.strictEqual(serverLoginChecks({ ...s, secondLogin: undefined, authFileSecret: "verifier" }), 0);
  });

  it("states the arithmetic", () => {
    assert.strictEqual(
      poolBudget(base).arithmetic,
      "(2 replicas + 1 surge pod) x 1 process(es) per pod x 50 server connections per process = 150; " +
        "PostgreSQL allows 200 max_connections - 20 reserved = 180",
    );
  });
});
