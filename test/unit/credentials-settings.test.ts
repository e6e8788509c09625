import * as assert from "node:assert/strict";
import { ConfigError, IssueList, readSection } from "../../components/common";
import {
  AUTH_QUERY_DEFAULTS,
  CREDENTIAL_DEFAULTS,
  CREDENTIALS,
  type CredentialSettings,
  vaultReadsFor,
} from "../../components/credentials";

const KEY = "clipper-pgbouncer:credentials";

function read(raw: unknown): CredentialSettings {
  const issues = new IssueList();
  const s = readSection(CREDENTIALS, KEY, raw, issues);
  issues.throwIfAny();
  return s;
}

function refused(raw: unknown, key: string, pattern: RegExp): void {
  assert.throws(
    () => read(raw),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      const issue = e.issues.find((i) => i.key === key);
      assert.ok(issue, `no issue for ${key}: ${e.message}`);
      assert.match(issue.message, pattern);
      return true;
    },
  );
}

describe("credentials settings", () => {
  it("defaults to file mode, scram-sha-256, secret/clipper/pgbouncer", () => {
    assert.deepEqual(read(undefined), CREDENTIAL_DEFAULTS);
    assert.equal(read({}).authType, "scram-sha-256");
    assert.equal(read({}).authFileSecret, "password");
    assert.equal(read({}).authQuery, undefined);
  });

  it("takes md5 and the verifier in the auth file only when asked, and custom mount, path and keys", () => {
    const s = read({
      authType: "md5",
      authFileSecret: "verifier",
      vaultMount: "kv",
      vaultPath: "teams/clipper/pooler",
      appUserKey: "username",
      appPasswordKey: "password",
      statsPasswordKey: "stats_password",
    });
    assert.deepEqual(s, {
      authType: "md5",
      authFileSecret: "verifier",
      vaultMount: "kv",
      vaultPath: "teams/clipper/pooler",
      appUserKey: "username",
      appPasswordKey: "password",
      statsPasswordKey: "stats_password",
    });
    assert.deepEqual(vaultReadsFor(s), [
      { mount: "kv", name: "teams/clipper/pooler", keys: ["username", "password", "stats_password"] },
    ]);
  });

  it("auth_query mode fills its defaults and reads only auth_user's and the stats user's keys", () => {
    const s = read({ authQuery: {} });
    assert.deepEqual(s.authQuery, AUTH_QUERY_DEFAULTS);
    assert.deepEqual(vaultReadsFor(s), [
      {
        mount: CREDENTIAL_DEFAULTS.vaultMount,
        name: CREDENTIAL_DEFAULTS.vaultPath,
        keys: [AUTH_QUERY_DEFAULTS.passwordKey, CREDENTIAL_DEFAULTS.statsPasswordKey],
      },
    ]);
    const custom = read({
      authQuery: {
        user: "pooler_lookup",
        passwordKey: "lookup",
        query: "SELECT u, p FROM f($1)",
        dbname: "auth",
      },
    });
    assert.deepEqual(custom.authQuery, {
      user: "pooler_lookup",
      passwordKey: "lookup",
      query: "SELECT u, p FROM f($1)",
      dbname: "auth",
    });
  });

  describe("refuses", () => {
    it("an auth type other than scram-sha-256 or md5", () =>
      refused({ authType: "plain" }, `${KEY}.authType`, /"plain"; must be one of "scram-sha-256", "md5"/));
    it("an auth file secret other than password or verifier", () =>
      refused(
        { authFileSecret: "scram" },
        `${KEY}.authFileSecret`,
        /"scram"; must be one of "password", "verifier"/,
      ));
    it("authFileSecret together with auth_query (auth_user's entry is always its password)", () =>
      refused(
        { authFileSecret: "verifier", authQuery: {} },
        `${KEY}.authFileSecret`,
        /not used when .*authQuery is set/,
      ));
    it("a Vault path with an empty segment", () =>
      refused({ vaultPath: "clipper//pgbouncer" }, `${KEY}.vaultPath`, /a Vault secret path/));
    it("a mount with a leading slash", () =>
      refused({ vaultMount: "/secret" }, `${KEY}.vaultMount`, /mount path/));
    it("a key name with a space", () =>
      refused({ appPasswordKey: "app password" }, `${KEY}.appPasswordKey`, /key name/));
    it("the same Vault key for two values", () =>
      refused({ statsPasswordKey: "app_password" }, `${KEY}.appUserKey`, /three different Vault keys/));
    it("an unknown field", () => refused({ appUser: "clipper" }, `${KEY}.appUser`, /not a known setting/));
    it("application keys together with auth_query", () =>
      refused(
        { appPasswordKey: "pw", authQuery: {} },
        `${KEY}.appPasswordKey`,
        /not used when .*authQuery is set/,
      ));
    it("an auth_query without $1", () =>
      refused(
        { authQuery: { query: "SELECT usename, passwd FROM pg_shadow" } },
        `${KEY}.authQuery.query`,
        /\$1/,
      ));
    it("an auth_query of several lines", () =>
      refused({ authQuery: { query: "SELECT u, p\nFROM f($1)" } }, `${KEY}.authQuery.query`, /one line/));
    it("an auth_user PgBouncer would need to quote", () =>
      refused({ authQuery: { user: "Auth User" } }, `${KEY}.authQuery.user`, /PostgreSQL identifier/));
    it("an auth_dbname that is not an identifier", () =>
      refused({ authQuery: { dbname: "my-db" } }, `${KEY}.authQuery.dbname`, /PostgreSQL identifier/));
    it("an auth_user password key equal to the stats key", () =>
      refused(
        { authQuery: { passwordKey: "exporter_password" } },
        `${KEY}.authQuery.passwordKey`,
        /must differ from .*statsPasswordKey/,
      ));
    it("an unknown auth_query field", () =>
      refused({ authQuery: { database: "x" } }, `${KEY}.authQuery.database`, /not a known setting/));
  });
});
