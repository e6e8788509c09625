/**
 * One PgBouncer release for the product and its tests: `components/pgbouncer/pgbouncer-release.json` is the
 * stacks' default `pgbouncer.version`, what the harness runs and what tools/install-test-deps.sh builds.
 * The stack files repeat the version (prod spells every setting out); these tests tie them to it.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { PGBOUNCER_RELEASE, OLDEST_SECURE, compareVersions } from "../../components/pgbouncer";
import { PROJECT_DIR } from "../../stacks/stack-file";

const root = PROJECT_DIR;
const read = (f: string) => fs.readFileSync(path.join(root, f), "utf8");

describe("the PgBouncer release (pgbouncer-release.json)", () => {
  for (const stack of ["prod", "staging"]) {
    it(`Pulumi.${stack}.yaml deploys exactly that release`, () => {
      const doc = yaml.load(read(`Pulumi.${stack}.yaml`)) as {
        config: Record<string, { version?: unknown }>;
      };
      const version = doc.config["clipper-pgbouncer:pgbouncer"]?.version;
      assert.equal(String(version), PGBOUNCER_RELEASE.version);
    });
  }

  it("carries the security fixes the settings demand", () => {
    assert.ok(compareVersions(PGBOUNCER_RELEASE.version, OLDEST_SECURE) >= 0);
  });

  it("tools/install-test-deps.sh reads the version and checksum from the JSON file, and spells neither", () => {
    const script = read("tools/install-test-deps.sh");
    assert.match(script, /components\/pgbouncer\/pgbouncer-release\.json/);
    assert.ok(!script.includes(PGBOUNCER_RELEASE.version), "the script spells the version out");
    assert.ok(!script.includes(PGBOUNCER_RELEASE.sha256), "the script spells the checksum out");
    assert.match(script, /sha256sum "\$tarball"/);
  });

  it("the upstream URL is the release's own tarball", () => {
    const v = PGBOUNCER_RELEASE.version;
    assert.equal(
      PGBOUNCER_RELEASE.upstreamUrl,
      `https://www.pgbouncer.org/downloads/files/${v}/pgbouncer-${v}.tar.gz`,
    );
    assert.match(PGBOUNCER_RELEASE.sha256, /^[0-9a-f]{64}$/);
  });

  it("docs/testing.md names the release, its upstream URL and its checksum", () => {
    const page = read("docs/testing.md");
    assert.ok(page.includes(`PgBouncer ${PGBOUNCER_RELEASE.version}`), "no release in docs/testing.md");
    assert.ok(page.includes(PGBOUNCER_RELEASE.upstreamUrl), "no upstream URL in docs/testing.md");
    assert.ok(page.includes(PGBOUNCER_RELEASE.sha256), "no checksum in docs/testing.md");
  });

  it("the vendored SHA256SUMS agrees (skipped without ../shared beside the project)", function () {
    const sums = path.join(
      root,
      "..",
      "shared",
      path.dirname(PGBOUNCER_RELEASE.vendoredTarball),
      "SHA256SUMS",
    );
    if (!fs.existsSync(sums)) this.skip();
    const line = fs
      .readFileSync(sums, "utf8")
      .split("\n")
      .find((l) => l.endsWith(path.basename(PGBOUNCER_RELEASE.vendoredTarball)));
    assert.equal(line?.split(/\s+/)[0], PGBOUNCER_RELEASE.sha256);
  });
});
