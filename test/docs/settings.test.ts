/**
 * docs/settings.md against the program: its tables list every setting key the program reads, and only those.
 */
import * as assert from "assert";
import { IssueList } from "../../components/common";
import { parseSettings } from "../../stacks/settings";
import { stackFileConfig, CONFIG_NAMESPACE, rawStackConfig } from "../../stacks/stack-file";
import { readDoc } from "../support/docs";

const SETTINGS = readDoc("docs/settings.md");
/** The tables of "## Every setting", up to the next second-level heading. */
const TABLES = SETTINGS.split(/^## Every setting$/m)[1]?.split(/^## /m)[0] ?? "";

/** Every setting key the program reads, with both credential modes and an explicit backend namespace. */
function settingKeys(): string[] {
  const raw = rawStackConfig(stackFileConfig("prod"));
  const keys = new Set<string>();
  for (const variant of [
    raw,
    {
      ...raw,
      credentials: { authQuery: { dbname: "clipper" } },
      backend: { namespace: "other" },
      database: { ...(raw.database as object), cpuCores: 16 },
      pgbouncer: { digest: `sha256:${"0".repeat(64)}` },
      exporter: { digest: `sha256:${"0".repeat(64)}` },
      network: { databasePodSelector: { app: "postgres" }, databaseCidrs: ["10.0.0.0/16"] },
      tls: {
        certificate: { source: "secret", name: "tls" },
        serverCa: { source: "vault", mount: "m", path: "p" },
      },
    },
  ]) {
    const issues = new IssueList();
    parseSettings(variant, issues);
    for (const k of issues.readKeys) keys.add(k.slice(CONFIG_NAMESPACE.length + 1));
  }
  return [...keys].sort();
}

/** The keys the tables document: the first cell of each row. */
function documentedKeys(): string[] {
  return [...TABLES.matchAll(/^\| `([A-Za-z.]+)`/gm)].map((m) => m[1]);
}

describe("docs/settings.md", () => {
  it("has the settings tables", () => {
    assert.ok(TABLES.length > 0, 'no "## Every setting" section');
    assert.ok(documentedKeys().length > 60);
  });

  it("documents every setting the program reads", () => {
    const keys = settingKeys();
    assert.ok(keys.length > 60, `only ${keys.length} keys found`);
    const documented = new Set(documentedKeys());
    // `pgbouncer.resources`, `monitoring.for` and the TLS sources are documented by their fields
    const missing = keys.filter(
      (k) => !documented.has(k) && !/\.(resources|for)$/.test(k) && !/^tls\.(certificate|serverCa)$/.test(k),
    );
    assert.deepStrictEqual(missing, []);
  });

  it("documents no setting the program does not read, and none twice", () => {
    const keys = new Set(settingKeys());
    const documented = documentedKeys();
    assert.deepStrictEqual(
      documented.filter((k) => !keys.has(k)),
      [],
    );
    assert.deepStrictEqual(
      documented.filter((k, i) => documented.indexOf(k) !== i),
      [],
    );
  });
});
