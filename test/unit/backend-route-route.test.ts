import * as assert from "assert";
import type * as pulumi from "@pulumi/pulumi";
import {
  DESTROY_GUARD_HOOK,
  DESTROY_GUARD_MESSAGE,
  backendConfigData,
  connectionUrl,
  metricsEndpoint,
  patchAnnotations,
  patchOptions,
  routeAnnotationValue,
  routeEndpoint,
} from "../../components/backend-route";
import {
  appLogin,
  CREDENTIAL_DEFAULTS,
  type CredentialSettings,
  md5Secret,
  scramVerifier,
} from "../../components/credentials";

const POOLER = { host: "pgbouncer.clipper.svc.cluster.local", port: 6432 };
const DATABASE = { host: "postgres.clipper.svc.cluster.local", port: 5432 };

describe("backend route: pure core", () => {
  it("routeEndpoint sends pgbouncer to the pooler and direct to PostgreSQL", () => {
    assert.deepStrictEqual(routeEndpoint("pgbouncer", POOLER, DATABASE), POOLER);
    assert.deepStrictEqual(routeEndpoint("direct", POOLER, DATABASE), DATABASE);
  });

  it("backendConfigData writes the configured keys, the port as a string", () => {
    assert.deepStrictEqual(backendConfigData({ hostKey: "PGHOST", portKey: "PGPORT" }, DATABASE), {
      PGHOST: DATABASE.host,
      PGPORT: "5432",
    });
  });

  it("the annotation changes with the route and with the endpoint", () => {
    const values = new Set([
      routeAnnotationValue("pgbouncer", POOLER),
      routeAnnotationValue("direct", DATABASE),
      routeAnnotationValue("pgbouncer", { ...POOLER, port: 6433 }),
    ]);
    assert.strictEqual(values.size, 3);
    assert.strictEqual(routeAnnotationValue("direct", DATABASE), `direct/${DATABASE.host}:5432`);
  });

  it("patchForce only when conflicts are forced", () => {
    assert.strictEqual(patchAnnotations(true)["pulumi.com/patchForce"], "true");
    assert.ok(!("pulumi.com/patchForce" in patchAnnotations(false)));
  });

  it("destroy is refused while the backend uses the pooler; a deleted patch always leaves its values", () => {
    assert.deepStrictEqual(patchOptions("pgbouncer"), { protect: true, retainOnDelete: true });
    assert.deepStrictEqual(patchOptions("direct"), { protect: false, retainOnDelete: true });
  });

  it("the destroy guard hook is bound while the route is pgbouncer only, and says roll back first", () => {
    const guard = { name: DESTROY_GUARD_HOOK } as pulumi.ResourceHook;
    assert.deepStrictEqual(patchOptions("pgbouncer", guard), {
      protect: true,
      retainOnDelete: true,
      hooks: { beforeDelete: [guard] },
    });
    assert.deepStrictEqual(patchOptions("direct", guard), { protect: false, retainOnDelete: true });
    for (const words of [
      "backend.route direct",
      "pulumi up",
      "pulumi destroy",
      "Decommission",
      "state unprotect",
    ]) {
      assert.ok(DESTROY_GUARD_MESSAGE.includes(words), words);
    }
  });

  it("connectionUrl percent-encodes the login and parses back to it", () => {
    const url = connectionUrl({ user: "app", password: "a@b:c/d%e" }, POOLER, "clipper");
    assert.strictEqual(url, `postgres://app:a%40b%3Ac%2Fd%25e@${POOLER.host}:6432/clipper`);
    const parsed = new URL(url);
    assert.strictEqual(decodeURIComponent(parsed.password), "a@b:c/d%e");
  });

  it("metricsEndpoint", () => {
    assert.strictEqual(metricsEndpoint(POOLER.host, 9127), `http://${POOLER.host}:9127/metrics`);
  });
});

describe("backend route: the application login from Vault", () => {
  const s = CREDENTIAL_DEFAULTS;
  const data = { [s.appUserKey]: "clipper_app", [s.appPasswordKey]: "correct horse" };

  it("GIVEN a user and a password THEN the login", () => {
    assert.deepStrictEqual(appLogin(s, data), { login: { user: "clipper_app", password: "correct horse" } });
  });

  const refusals: [string, CredentialSettings, Record<string, string>, RegExp][] = [
    [
      "auth_query mode",
      { ...s, authQuery: { user: "a", passwordKey: "k", query: "q $1" } },
      data,
      /authQuery/,
    ],
    ["a missing user", s, { [s.appPasswordKey]: "only-pw-zz" }, /key "app_user" holds no usable user name/],
    [
      "a missing password",
      s,
      { [s.appUserKey]: "only_user_zz" },
      /key "app_password" holds no usable password/,
    ],
    [
      "a SCRAM verifier",
      s,
      { ...data, [s.appPasswordKey]: scramVerifier("u", "pw") },
      /holds a scram-verifier/,
    ],
    ["an md5 hash", s, { ...data, [s.appPasswordKey]: md5Secret("u", "pw") }, /holds a md5-hash/],
  ];
  for (const [what, settings, d, pattern] of refusals) {
    it(`GIVEN ${what} THEN no login, and the reason names no Vault value`, () => {
      const r = appLogin(settings, d);
      assert.ok("unavailable" in r, JSON.stringify(r));
      assert.match(r.unavailable, pattern);
      for (const v of Object.values(d)) assert.ok(!r.unavailable.includes(v));
    });
  }
});
