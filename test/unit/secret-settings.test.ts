/**
 * Settings given as Pulumi secrets, over the whole stack's schema: every setting is either refused, naming
 * its key and where it would be written in plaintext, or accepted and kept secret (never quoted in a
 * message, and marked when a resource takes it as a secret). Pulumi marks secrecy per top-level key, so a
 * test stack makes one section secret at a time.
 */
import * as assert from "assert";
import {
  ConfigError,
  IssueList,
  type SettingDeclaration,
  declaredSettings,
  readStack,
} from "../../components/common";
import { STACK_SETTINGS, parseStack } from "../../stacks/settings";
import { CONFIG_NAMESPACE, rawStackConfig, stackFileConfig } from "../../stacks/stack-file";

const PROD = rawStackConfig(stackFileConfig("prod"));
const LEAVES = declaredSettings(STACK_SETTINGS.shape).filter((d) => !d.field.fields && !d.field.variants);
/** Values no message may quote. */
const SECRET_STRING = "s3cr3t-value";
const SECRET_NUMBER = 424242;

function setAt(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const [head, ...rest] = path;
  if (rest.length === 0) {
    obj[head] = value;
    return;
  }
  obj[head] ??= {};
  setAt(obj[head] as Record<string, unknown>, rest, value);
}

/** A value of the setting's kind that stands out (valid or not: secrecy is decided either way). */
function sample(d: SettingDeclaration): unknown {
  const like = d.field.defaultValue ?? d.field.kind.missing;
  if (typeof like === "number") return SECRET_NUMBER;
  if (typeof like === "boolean") return !like;
  if (Array.isArray(like)) return [`10.42.42.42/32`];
  if (typeof like === "object") return { app: SECRET_STRING };
  return SECRET_STRING;
}

/** Prod's settings, with `d`'s section holding only `d` (and the variant tags that select it), secret. */
function withSecret(d: SettingDeclaration): { raw: Record<string, unknown>; section: string } {
  const [section, ...rest] = d.key.split(".");
  const raw: Record<string, unknown> = { ...PROD };
  if (rest.length === 0) {
    raw[section] = sample(d);
  } else {
    const s: Record<string, unknown> = {};
    for (const [tagKey, tag] of Object.entries(d.selectedBy)) setAt(s, tagKey.split(".").slice(1), tag);
    setAt(s, rest, sample(d));
    raw[section] = s;
  }
  return { raw, section };
}

function read(raw: Record<string, unknown>, secret: readonly string[]) {
  const issues = new IssueList();
  const parsed = readStack(CONFIG_NAMESPACE, STACK_SETTINGS, raw, issues, new Set(secret));
  return { ...parsed, issues: issues.issues };
}

describe("settings given as Pulumi secrets", () => {
  it("every setting says what a secret value becomes", () => {
    assert.ok(LEAVES.length > 60, `${LEAVES.length} settings`);
    assert.deepStrictEqual(
      LEAVES.filter((d) => d.use === undefined).map((d) => d.key),
      [],
    );
  });

  for (const d of LEAVES) {
    const what = d.use?.kind === "plaintext" ? `refused (${d.use.where})` : `accepted (${d.use?.kind})`;
    it(`${d.key}${Object.keys(d.selectedBy).length ? ` (${JSON.stringify(d.selectedBy)})` : ""}: ${what}`, () => {
      const { raw, section } = withSecret(d);
      const { issues, secretInputs } = read(raw, [section]);
      const key = `${CONFIG_NAMESPACE}:${d.key}`;
      const refusals = issues.filter((i) => i.key === key && i.message.startsWith("is a Pulumi secret"));
      if (d.use?.kind === "plaintext") {
        assert.strictEqual(refusals.length, 1, JSON.stringify(issues));
        assert.ok(refusals[0].message.includes(d.use.where), refusals[0].message);
      } else {
        assert.deepStrictEqual(refusals, []);
      }
      assert.strictEqual(secretInputs.has(d.key), d.use?.kind === "secret-input");
      const quoted = issues.filter(
        (i) => i.message.includes(SECRET_STRING) || i.message.includes(`${SECRET_NUMBER}`),
      );
      assert.deepStrictEqual(quoted, []);
      // The same value from a plain key is read as it is (the test's values are seen at all).
      assert.ok(read(raw, []).issues.every((i) => !i.message.startsWith("is a Pulumi secret")));
    });
  }

  it("refuses prod's database section as a secret, naming what its ConfigMap would show", () => {
    assert.throws(
      () => parseStack(PROD, new Set(["database"])),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.deepStrictEqual(
          e.issues.map((i) => i.key),
          ["host", "port", "name"].map((f) => `${CONFIG_NAMESPACE}:database.${f}`),
        );
        assert.match(
          e.issues[0].message,
          /^is a Pulumi secret \(a value in clipper-pgbouncer:database is set with --secret, which makes all of it secret\), but pgbouncer.ini, in the pooler's ConfigMap would hold it in plaintext; set clipper-pgbouncer:database without --secret, or leave this setting out$/,
        );
        assert.doesNotMatch(e.message, /postgres\.clipper\.svc/);
        return true;
      },
    );
  });

  it("takes a secret tls section of the certificate's Vault request and a Vault-held server CA", () => {
    const tls = {
      certificate: { mount: "pki-int", role: "pgbouncer-role", ttlSeconds: 86400 * 20 },
      serverCa: { source: "vault", mount: "kv", path: "postgres/ca" },
    };
    const { value, secretInputs } = parseStack({ ...PROD, tls }, new Set(["tls"]));
    assert.deepStrictEqual(value.tls.certificate, {
      source: "vault-pki",
      mount: "pki-int",
      role: "pgbouncer-role",
      ttlSeconds: 1728000,
      renewBeforeSeconds: 864000,
    });
    assert.deepStrictEqual(
      ["mount", "role", "ttlSeconds", "renewBeforeSeconds"].map((f) =>
        secretInputs.has(`tls.certificate.${f}`),
      ),
      [true, true, true, false],
    );
  });
});
