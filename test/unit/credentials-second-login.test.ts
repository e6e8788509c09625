/**
 * The second application login (`credentials.secondLogin`, rotations by alternating users): its settings and
 * their refusals, both logins in the auth file, the current one in `connectionUrl`, and each Vault problem
 * named by its key.
 */
import * as assert from "node:assert/strict";
import { ConfigError, IssueList, readSection } from "../../components/common";
import {
  CREDENTIALS,
  type CredentialSettings,
  VaultCredentialError,
  appLogin,
  buildCredentials,
  parseAuthFile,
  vaultKeys,
} from "../../components/credentials";

const KEY = "clipper-pgbouncer:credentials";
const CTX = { statsUser: "pgbouncer_exporter", pgbouncerPort: 6432 };

function read(raw: unknown): CredentialSettings {
  const issues = new IssueList();
  const s = readSection(CREDENTIALS, KEY, raw, issues);
  issues.throwIfAny();
  return s;
}

function refusal(raw: unknown): string {
  try {
    read(raw);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail("accepted");
}

const TWO = read({ secondLogin: {} });
const DATA = {
  app_user: "clipper_app_a",
  app_password: "password-a",
  app_user_b: "clipper_app_b",
  app_password_b: "password-b",
  app_current: "clipper_app_a",
  exporter_password: "stats-password",
};

function problems(data: Record<string, string>): string {
  try {
    buildCredentials(TWO, CTX, { data });
  } catch (e) {
    assert.ok(e instanceof VaultCredentialError, String(e));
    return e.message;
  }
  assert.fail("accepted");
}

describe("a second application login (credentials.secondLogin)", () => {
  it("reads its keys with their defaults, and the stack reads them from Vault", () => {
    assert.deepEqual(TWO.secondLogin, {
      userKey: "app_user_b",
      passwordKey: "app_password_b",
      currentKey: "app_current",
    });
    assert.deepEqual(
      vaultKeys(TWO).map((k) => k.key),
      ["app_user", "app_password", "app_user_b", "app_password_b", "app_current", "exporter_password"],
    );
  });

  it("refuses it in auth_query mode, with a verifier in the auth file, and with keys that collide", () => {
    assert.match(
      refusal({ secondLogin: {}, authQuery: {} }),
      /credentials\.secondLogin: is not used when clipper-pgbouncer:credentials\.authQuery is set/,
    );
    assert.match(
      refusal({ secondLogin: {}, authFileSecret: "verifier" }),
      /credentials\.secondLogin: needs clipper-pgbouncer:credentials\.authFileSecret "password"/,
    );
    assert.match(
      refusal({ secondLogin: { passwordKey: "app_password" } }),
      /credentials\.secondLogin: names the Vault keys "app_user_b", "app_password", "app_current"; each of the six keys/,
    );
  });

  it("puts both logins in the auth file, each with its password, and the stats user", () => {
    const c = buildCredentials(TWO, CTX, { data: DATA });
    const file = parseAuthFile(c.authFile);
    assert.equal(file.get("clipper_app_a"), "password-a");
    assert.equal(file.get("clipper_app_b"), "password-b");
    assert.match(file.get("pgbouncer_exporter") ?? "", /^SCRAM-SHA-256\$/);
    assert.equal(file.size, 3);
  });

  it("gives connectionUrl's consumers the login the current key names", () => {
    assert.deepEqual(appLogin(TWO, DATA), { login: { user: "clipper_app_a", password: "password-a" } });
    assert.deepEqual(appLogin(TWO, { ...DATA, app_current: "clipper_app_b" }), {
      login: { user: "clipper_app_b", password: "password-b" },
    });
  });

  it("refuses a current login that is neither, one user for both logins, and a missing password, by key", () => {
    assert.match(
      problems({ ...DATA, app_current: "someone_else" }),
      /key "app_current" \(credentials\.secondLogin\.currentKey\): must name one of the two logins' users/,
    );
    assert.match(
      problems({ ...DATA, app_user_b: "clipper_app_a" }),
      /key "app_user_b" \(credentials\.secondLogin\.userKey\): names the same user as appUserKey/,
    );
    const noPassword: Record<string, string> = { ...DATA };
    delete noPassword.app_password_b;
    assert.match(
      problems(noPassword),
      /key "app_password_b" \(credentials\.secondLogin\.passwordKey\): is missing from the secret/,
    );
    assert.doesNotMatch(problems({ ...DATA, app_current: "x" }), /password-a|password-b/);
  });
});
