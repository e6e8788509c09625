import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import {
  type CredentialSettings,
  CREDENTIAL_DEFAULTS,
  type PoolerCredentials,
  VaultCredentialError,
  md5Secret,
  parseAuthFile,
  parseScramVerifier,
  scramKeys,
  scramVerifier,
} from "../../components/credentials";
import { oneLineReason } from "../../components/common";
import { VAULT_KV2_READ_TOKEN, loadPoolerCredentials } from "../../components/credentials/resources";
import { kvV2ReadResult } from "../../testing/engine";
import { CONFIG_NAMESPACE } from "../../stacks/stack-file";
import { promiseOf } from "../../testing/outputs";

/** What the mocked Vault holds: mount → secret name → data; `deleted` marks a deleted current version. */
let vaultData: Record<string, Record<string, Record<string, string>>> = {};
let deleted = false;
const calls: { token: string; inputs: Record<string, unknown> }[] = [];
const registered: string[] = [];
const providers: (string | undefined)[] = [];

/** When set, the mocked Vault read fails with this reason (as the provider words it). */
let vaultFailure: string | undefined;

function vaultAnswer(inputs: Record<string, unknown>): Record<string, unknown> {
  // The mocks pass `details` on as the invoke's error, as kvV2ReadResult does for a missing secret.
  if (vaultFailure !== undefined) throw Object.assign(new Error(vaultFailure), { details: vaultFailure });
  const mount = String(inputs.mount);
  const name = String(inputs.name);
  return kvV2ReadResult(mount, name, vaultData[mount]?.[name], { deleted, version: 3 });
}

const STATS_USER = "pgbouncer_exporter";
const PORT = 6432;
const CTX = { statsUser: STATS_USER, pgbouncerPort: PORT };
const APP_USER = "clipper_app";
const APP_PASSWORD = "app-Pa55word-with:/@%chars";
const STATS_PASSWORD = 'stats p@ss "quoted" ?#';
const AUTH_PASSWORD = 'auth-"user"-password';

function setVault(data: Record<string, string>, s: CredentialSettings = CREDENTIAL_DEFAULTS): void {
  vaultData = { [s.vaultMount]: { [s.vaultPath]: data } };
}

const DEFAULT_DATA = {
  app_user: APP_USER,
  app_password: APP_PASSWORD,
  exporter_password: STATS_PASSWORD,
};

const QUERY_SETTINGS: CredentialSettings = {
  ...CREDENTIAL_DEFAULTS,
  vaultMount: "kv",
  vaultPath: "teams/clipper/pooler",
  authQuery: {
    user: "pgbouncer_auth",
    passwordKey: "auth_password",
    query: "SELECT usename, passwd FROM pgbouncer.get_auth($1)",
    dbname: "clipper",
  },
};

const authEntries = parseAuthFile;

/** The settings with the auth file holding the verifier of the application user (the explicit hazard mode). */
const VERIFIER: CredentialSettings = { ...CREDENTIAL_DEFAULTS, authFileSecret: "verifier" };

class AfterCredentials extends pulumi.CustomResource {
  constructor(name: string, props: pulumi.Inputs) {
    super("test:index:AfterCredentials", name, props);
  }
}

class VaultProvider extends pulumi.ProviderResource {
  constructor(name: string) {
    super("vault", name, {});
  }
}

/** Loads as a program entry would: credentials first, resources only after they are good. */
async function program(s: CredentialSettings): Promise<PoolerCredentials> {
  const c = await loadPoolerCredentials(s, CTX);
  new AfterCredentials("after", { authFile: c.authFile });
  return c;
}

async function refused(
  s: CredentialSettings,
  pattern: RegExp,
  secrets: readonly string[] = [],
): Promise<void> {
  registered.length = 0;
  await assert.rejects(program(s), (e: unknown) => {
    assert.ok(e instanceof VaultCredentialError, String(e));
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(`mount "${s.vaultMount}" path "${s.vaultPath}"`), e.message);
    for (const v of secrets) assert.ok(!e.message.includes(v), `the error shows a Vault value: ${e.message}`);
    return true;
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(registered, [], "a resource was registered after a refused Vault value");
}

describe("credentials: loadPoolerCredentials with a mocked Vault", () => {
  before(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered.push(args.type);
          return { id: `${args.name}-id`, state: args.inputs as Record<string, unknown> };
        },
        call: (args) => {
          calls.push({ token: args.token, inputs: args.inputs as Record<string, unknown> });
          providers.push(args.provider);
          if (args.token === VAULT_KV2_READ_TOKEN) return vaultAnswer(args.inputs as Record<string, unknown>);
          throw new Error(`unexpected call ${args.token}`);
        },
      },
      CONFIG_NAMESPACE,
      "test",
      false,
    );
  });

  beforeEach(() => {
    deleted = false;
    vaultFailure = undefined;
    calls.length = 0;
    providers.length = 0;
    registered.length = 0;
    setVault(DEFAULT_DATA);
  });

  describe("GIVEN the default settings (file mode, scram-sha-256)", () => {
    it("reads the configured mount and path once through the Vault KV v2 invoke", async () => {
      await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX);
      assert.deepEqual(calls, [
        {
          token: VAULT_KV2_READ_TOKEN,
          inputs: { mount: CREDENTIAL_DEFAULTS.vaultMount, name: CREDENTIAL_DEFAULTS.vaultPath },
        },
      ]);
    });

    it("writes the application user's password (PgBouncer's server login) and the stats user's verifier", async () => {
      const c = await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX);
      const text = await promiseOf(c.authFile);
      const entries = authEntries(text);
      assert.deepEqual([...entries.keys()], [APP_USER, STATS_USER]);
      assert.equal(entries.get(APP_USER), APP_PASSWORD);
      // The stats user only logs in to PgBouncer's console: a verifier will do, and its password stays out.
      assert.ok(!text.includes(STATS_PASSWORD), text);
      const v = parseScramVerifier(entries.get(STATS_USER) ?? "");
      assert.ok(v, `${STATS_USER}: ${entries.get(STATS_USER)}`);
      // The verifier proves the password: its StoredKey is what a client with the password derives.
      assert.deepEqual(v.storedKey, scramKeys(STATS_PASSWORD, v.salt, v.iterations).storedKey);
      assert.notDeepEqual(v.storedKey, scramKeys(STATS_PASSWORD + "x", v.salt, v.iterations).storedKey);
      assert.deepEqual(c.iniAuth, { type: "scram-sha-256" });
    });

    it("gives the exporter a URL-encoded connection string to PgBouncer's console on the pod's port", async () => {
      const c = await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX);
      const url = new URL(await promiseOf(c.exporterConnectionString));
      assert.equal(url.protocol, "postgres:");
      assert.equal(decodeURIComponent(url.username), STATS_USER);
      assert.equal(decodeURIComponent(url.password), STATS_PASSWORD);
      assert.equal(url.host, `127.0.0.1:${PORT}`);
      assert.equal(url.pathname, "/pgbouncer");
      assert.equal(url.searchParams.get("sslmode"), "disable");
    });

    it("returns every Vault-derived value as a Pulumi secret", async () => {
      const c = await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX);
      assert.equal(await pulumi.isSecret(c.authFile), true);
      assert.equal(await pulumi.isSecret(c.exporterConnectionString), true);
      // and what is built from them stays secret
      assert.equal(await pulumi.isSecret(c.authFile.apply((t) => t.length)), true);
      assert.equal(await pulumi.isSecret(pulumi.all([c.exporterConnectionString]).apply(([s]) => s)), true);
    });

    it("is deterministic: the same Vault values give the same auth file (no pod roll)", async () => {
      const a = await promiseOf((await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX)).authFile);
      const b = await promiseOf((await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX)).authFile);
      assert.equal(a, b);
    });

    it("a rotated password in Vault changes that user's entry (the Secret changes, the pods roll)", async () => {
      const before = authEntries(
        await promiseOf((await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX)).authFile),
      );
      setVault({ ...DEFAULT_DATA, app_password: APP_PASSWORD + "-rotated" });
      const after = authEntries(
        await promiseOf((await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX)).authFile),
      );
      assert.notEqual(after.get(APP_USER), before.get(APP_USER));
      assert.equal(after.get(APP_USER), APP_PASSWORD + "-rotated");
      assert.equal(after.get(STATS_USER), before.get(STATS_USER));
    });

    for (const [what, value] of [
      ["a SCRAM verifier (copied from pg_authid)", scramVerifier(APP_USER, "copied from postgres", 8192)],
      ["an md5 hash", md5Secret(APP_USER, "from pg_authid")],
    ]) {
      it(`refuses ${what} in Vault, naming the key and what to store instead (the upgrade path)`, async () => {
        setVault({ ...DEFAULT_DATA, app_password: value });
        await refused(
          CREDENTIAL_DEFAULTS,
          new RegExp(
            `key "app_password" \\(credentials\\.appPasswordKey\\): holds ${what.split(" (")[0]}, but ` +
              `credentials\\.authFileSecret is "password" \\(the default\\)`,
          ),
          [value],
        );
        await assert.rejects(loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX), (e: Error) => {
          assert.ok(
            e.message.includes(
              `vault kv patch -mount=${CREDENTIAL_DEFAULTS.vaultMount} ${CREDENTIAL_DEFAULTS.vaultPath} app_password=<password>`,
            ),
            e.message,
          );
          assert.ok(
            e.message.includes("set credentials.authFileSecret: verifier (refused in prod"),
            e.message,
          );
          return true;
        });
      });
    }

    it("passes an explicit Vault provider to the invoke", async () => {
      const provider = new VaultProvider("vault-test");
      await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX, { provider });
      assert.equal(calls.length, 1);
      assert.match(providers[0] ?? "", /::vault-test::/);
      await loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX);
      assert.ok(!(providers[1] ?? "").includes("vault-test"), providers[1]);
    });
  });

  describe("GIVEN authFileSecret verifier (explicit; its hazard is in the TSDoc and the runbook)", () => {
    it("writes SCRAM verifiers of the app and stats users, never their passwords", async () => {
      const text = await promiseOf((await loadPoolerCredentials(VERIFIER, CTX)).authFile);
      assert.ok(!text.includes(APP_PASSWORD) && !text.includes(STATS_PASSWORD), text);
      const entries = authEntries(text);
      assert.equal(entries.get(APP_USER), scramVerifier(APP_USER, APP_PASSWORD));
      assert.equal(entries.get(STATS_USER), scramVerifier(STATS_USER, STATS_PASSWORD));
    });

    it("uses a SCRAM verifier stored in Vault (copied from pg_authid) verbatim", async () => {
      const verifier = scramVerifier(APP_USER, "copied from postgres", 8192);
      setVault({ ...DEFAULT_DATA, app_password: verifier });
      const entries = authEntries(await promiseOf((await loadPoolerCredentials(VERIFIER, CTX)).authFile));
      assert.equal(entries.get(APP_USER), verifier);
    });

    it("refuses a malformed SCRAM verifier", async () => {
      setVault({ ...DEFAULT_DATA, app_password: "SCRAM-SHA-256$4096:c2FsdA==$broken" });
      await refused(VERIFIER, /key "app_password".*starts like a SCRAM-SHA-256 verifier but is not one/, [
        "c2FsdA==",
      ]);
    });

    it("refuses an md5 hash under scram-sha-256", async () => {
      setVault({ ...DEFAULT_DATA, app_password: md5Secret(APP_USER, "x") });
      await refused(VERIFIER, /key "app_password".*md5 hash, which cannot answer scram-sha-256/);
    });
  });

  describe("GIVEN authType md5", () => {
    const md5: CredentialSettings = { ...CREDENTIAL_DEFAULTS, authType: "md5" };
    const md5Verifier: CredentialSettings = { ...md5, authFileSecret: "verifier" };

    it("writes the application user's password and the stats user's md5 hash", async () => {
      const c = await loadPoolerCredentials(md5, CTX);
      const entries = authEntries(await promiseOf(c.authFile));
      assert.equal(entries.get(APP_USER), APP_PASSWORD);
      assert.equal(entries.get(STATS_USER), md5Secret(STATS_USER, STATS_PASSWORD));
      assert.deepEqual(c.iniAuth, { type: "md5" });
    });

    it('with authFileSecret verifier writes "md5" + md5(password + user) for both users', async () => {
      const entries = authEntries(await promiseOf((await loadPoolerCredentials(md5Verifier, CTX)).authFile));
      assert.equal(entries.get(APP_USER), md5Secret(APP_USER, APP_PASSWORD));
      assert.equal(entries.get(STATS_USER), md5Secret(STATS_USER, STATS_PASSWORD));
    });

    it("with authFileSecret verifier uses an md5 hash stored in Vault verbatim", async () => {
      const hash = md5Secret(APP_USER, "from pg_authid");
      setVault({ ...DEFAULT_DATA, app_password: hash });
      const entries = authEntries(await promiseOf((await loadPoolerCredentials(md5Verifier, CTX)).authFile));
      assert.equal(entries.get(APP_USER), hash);
    });
  });

  describe("GIVEN auth_query mode", () => {
    beforeEach(() =>
      setVault({ auth_password: AUTH_PASSWORD, exporter_password: STATS_PASSWORD }, QUERY_SETTINGS),
    );

    it("lists only auth_user (with its password, which PgBouncer logs in with) and the stats user", async () => {
      const c = await loadPoolerCredentials(QUERY_SETTINGS, CTX);
      const entries = authEntries(await promiseOf(c.authFile));
      assert.deepEqual([...entries.keys()], ["pgbouncer_auth", STATS_USER]);
      assert.equal(entries.get("pgbouncer_auth"), AUTH_PASSWORD);
      assert.equal(entries.get(STATS_USER), scramVerifier(STATS_USER, STATS_PASSWORD));
      assert.equal(await pulumi.isSecret(c.authFile), true);
    });

    it("hands the ini auth_user, auth_query and auth_dbname", async () => {
      const c = await loadPoolerCredentials(QUERY_SETTINGS, CTX);
      assert.deepEqual(c.iniAuth, {
        type: "scram-sha-256",
        query: {
          user: QUERY_SETTINGS.authQuery?.user,
          query: QUERY_SETTINGS.authQuery?.query,
          dbname: QUERY_SETTINGS.authQuery?.dbname,
        },
      });
      assert.deepEqual(calls[0].inputs, { mount: "kv", name: "teams/clipper/pooler" });
    });

    it("refuses a verifier as auth_user's secret", async () => {
      setVault(
        { auth_password: scramVerifier("pgbouncer_auth", "x"), exporter_password: STATS_PASSWORD },
        QUERY_SETTINGS,
      );
      await refused(
        QUERY_SETTINGS,
        /key "auth_password" \(credentials\.authQuery\.passwordKey\): holds a scram-verifier/,
      );
    });

    it("refuses an empty auth_user password", async () => {
      setVault({ auth_password: "", exporter_password: STATS_PASSWORD }, QUERY_SETTINGS);
      await refused(QUERY_SETTINGS, /key "auth_password" \(credentials\.authQuery\.passwordKey\): is empty/);
    });

    it("refuses an auth_user that is also the stats user", async () => {
      const s: CredentialSettings = {
        ...QUERY_SETTINGS,
        authQuery: {
          ...(QUERY_SETTINGS.authQuery as NonNullable<CredentialSettings["authQuery"]>),
          user: STATS_USER,
        },
      };
      await refused(s, /key "auth_password".*is also the stats user/);
    });
  });

  describe("GIVEN a bad Vault value: refused, naming mount, path and key, nothing registered", () => {
    it("a missing secret path", async () => {
      vaultData = {};
      await refused(
        CREDENTIAL_DEFAULTS,
        /path "clipper\/pgbouncer": could not be read from the Vault at .* \(.*no secret found/,
      );
    });

    it("an unreachable Vault: the provider's multi-line reason on the problem's one line", async () => {
      vaultFailure =
        "invoking vault:kv/getSecretV2:getSecretV2: 1 error occurred:\n\t* failed to lookup token, " +
        'err=Get "http://127.0.0.1:1/v1/auth/token/lookup-self": dial tcp 127.0.0.1:1: connect: connection refused\n\n';
      await refused(CREDENTIAL_DEFAULTS, /could not be read/);
      const saved = process.env.VAULT_ADDR;
      process.env.VAULT_ADDR = "http://127.0.0.1:1";
      try {
        await assert.rejects(loadPoolerCredentials(CREDENTIAL_DEFAULTS, CTX), (e: Error) => {
          assert.equal(
            e.message,
            "PgBouncer credentials refused (1 problem):\n" +
              '  - Vault KV v2 mount "secret" path "clipper/pgbouncer": could not be read from the Vault at ' +
              "http://127.0.0.1:1 (invoking " +
              "vault:kv/getSecretV2:getSecretV2: failed to lookup token, err=Get " +
              '"http://127.0.0.1:1/v1/auth/token/lookup-self": dial tcp 127.0.0.1:1: connect: connection refused); ' +
              "check that Vault is reachable (vault:address or VAULT_ADDR), that the secret exists and that the " +
              "Vault token may read it",
          );
          return true;
        });
      } finally {
        if (saved === undefined) delete process.env.VAULT_ADDR;
        else process.env.VAULT_ADDR = saved;
      }
    });

    it("a Vault with no address: the message says none is set", async () => {
      vaultFailure = "invoking vault:kv/getSecretV2:getSecretV2: no vault address";
      const saved = process.env.VAULT_ADDR;
      delete process.env.VAULT_ADDR;
      try {
        await refused(
          CREDENTIAL_DEFAULTS,
          /could not be read from the Vault at \(no vault:address or VAULT_ADDR set\)/,
        );
      } finally {
        if (saved !== undefined) process.env.VAULT_ADDR = saved;
      }
    });

    it("a deleted current version", async () => {
      deleted = true;
      await refused(
        CREDENTIAL_DEFAULTS,
        /key "app_user" \(credentials\.appUserKey\): cannot be read: the secret's current version is deleted or destroyed[\s\S]*key "app_password"[\s\S]*key "exporter_password"/,
      );
    });

    for (const key of ["app_user", "app_password", "exporter_password"]) {
      it(`a missing key ${key}`, async () => {
        const data: Record<string, string> = { ...DEFAULT_DATA };
        delete data[key];
        setVault(data);
        await refused(
          CREDENTIAL_DEFAULTS,
          new RegExp(`key "${key}" \\(credentials\\.\\w+\\): is missing from the secret`),
        );
      });
    }

    it("an empty application password", async () => {
      setVault({ ...DEFAULT_DATA, app_password: "" });
      await refused(CREDENTIAL_DEFAULTS, /key "app_password" \(credentials\.appPasswordKey\): is empty/);
    });

    it("an empty stats password", async () => {
      setVault({ ...DEFAULT_DATA, exporter_password: "" });
      await refused(
        CREDENTIAL_DEFAULTS,
        /key "exporter_password" \(credentials\.statsPasswordKey\): is empty/,
      );
    });

    const badNames: [string, RegExp][] = [
      ['app"user', /double quote/],
      ["app user", /whitespace or a control character/],
      ["app_user\n", /whitespace or a control character/],
      ["a".repeat(64), /64 bytes long/],
      ["", /is empty/],
    ];
    for (const [name, why] of badNames) {
      it(`a user name PgBouncer cannot take: ${JSON.stringify(name)}`, async () => {
        setVault({ ...DEFAULT_DATA, app_user: name });
        await refused(
          CREDENTIAL_DEFAULTS,
          new RegExp(`key "app_user" \\(credentials\\.appUserKey\\): .*${why.source}`),
          [APP_PASSWORD],
        );
      });
    }

    it("an application user that is the stats user", async () => {
      setVault({ ...DEFAULT_DATA, app_user: STATS_USER });
      await refused(CREDENTIAL_DEFAULTS, /key "app_user".*names the stats user/);
    });

    it("a password with a line break or non-ASCII text, without showing it", async () => {
      setVault({ ...DEFAULT_DATA, app_password: "secret-value\n" });
      await refused(CREDENTIAL_DEFAULTS, /key "app_password".*printable ASCII/, ["secret-value"]);
      setVault({ ...DEFAULT_DATA, exporter_password: "s\u00e9cret-value" });
      await refused(CREDENTIAL_DEFAULTS, /key "exporter_password".*printable ASCII/, ["cret-value"]);
    });

    it("a verifier where the exporter needs the password", async () => {
      setVault({ ...DEFAULT_DATA, exporter_password: scramVerifier(STATS_USER, "x") });
      await refused(
        CREDENTIAL_DEFAULTS,
        /key "exporter_password".*holds a scram-verifier.*connection string/,
      );
    });

    it("reports every problem at once", async () => {
      setVault({ app_user: 'a"b', app_password: "" });
      await refused(
        CREDENTIAL_DEFAULTS,
        /3 problems(?=[\s\S]*"app_user".*double quote)(?=[\s\S]*"app_password".*is empty)(?=[\s\S]*"exporter_password".*is missing)/,
      );
    });
  });
});

describe("oneLineReason: the Vault provider's error inside a one-line problem", () => {
  it("flattens a Go multierror list", () => {
    assert.equal(
      oneLineReason(
        "invocation of vault:kv/getSecretV2:getSecretV2 returned an error: invoking " +
          "vault:kv/getSecretV2:getSecretV2: 1 error occurred:\n\t* failed to lookup token, " +
          'err=Get "http://127.0.0.1:1/v1/auth/token/lookup-self": dial tcp 127.0.0.1:1: connect: connection refused\n\n',
      ),
      "invocation of vault:kv/getSecretV2:getSecretV2 returned an error: invoking " +
        "vault:kv/getSecretV2:getSecretV2: failed to lookup token, " +
        'err=Get "http://127.0.0.1:1/v1/auth/token/lookup-self": dial tcp 127.0.0.1:1: connect: connection refused',
    );
    assert.equal(oneLineReason("reading: 2 errors occurred:\n\t* a\n\t* b\n\n"), "reading: a; b");
  });

  it("flattens the Vault API's error inside it (a token Vault refuses)", () => {
    assert.equal(
      oneLineReason(
        "invoking vault:kv/getSecretV2:getSecretV2: 1 error occurred:\n\t* failed to lookup token, " +
          "err=Error making API request.\n\nURL: GET http://127.0.0.1:8200/v1/auth/token/lookup-self\n" +
          "Code: 403. Errors:\n\n* permission denied\n\n",
      ),
      "invoking vault:kv/getSecretV2:getSecretV2: failed to lookup token, err=Error making API request. " +
        "URL: GET http://127.0.0.1:8200/v1/auth/token/lookup-self Code: 403. Errors: permission denied",
    );
  });

  it("keeps a one-line reason as it is", () => {
    const r = 'error reading from Vault: no secret found at "secret/data/clipper/pgbouncer"';
    assert.equal(oneLineReason(r), r);
  });
});
