import * as assert from "assert";
import { ConfigError, IssueList, readSection } from "../../components/common";
import {
  BACKEND_ROUTE,
  BACKEND_ROUTE_DEFAULTS,
  type BackendRouteSettings,
} from "../../components/backend-route";
import { parseSettings, loadStackSettings } from "../../stacks/settings";
import { stackFileConfig, rawStackConfig } from "../../stacks/stack-file";

const KEY = "clipper-pgbouncer:backend";

function read(raw: unknown): { settings: BackendRouteSettings; problems: string[] } {
  const issues = new IssueList();
  const settings = readSection(BACKEND_ROUTE, KEY, raw, issues);
  return { settings, problems: issues.issues.map((i) => `${i.key}: ${i.message}`) };
}

function expectProblem(raw: unknown, pattern: RegExp): void {
  const { problems } = read(raw);
  assert.ok(
    problems.some((p) => pattern.test(p)),
    `expected a problem matching ${pattern}, got:\n${problems.join("\n")}`,
  );
}

describe("backend route settings", () => {
  it("GIVEN no backend section THEN the backend goes through the pooler with the spec's object names", () => {
    const { settings, problems } = read(undefined);
    assert.deepStrictEqual(problems, []);
    assert.deepStrictEqual(settings, {
      route: "pgbouncer",
      configMapName: "backend-config",
      deploymentName: "clipper-backend",
      hostKey: "DB_HOST",
      portKey: "DB_PORT",
      forceConflicts: true,
    });
  });

  it("GIVEN every field set THEN every value is taken", () => {
    const raw = {
      route: "direct",
      namespace: "backend",
      configMapName: "api-config",
      deploymentName: "api",
      hostKey: "PGHOST",
      portKey: "PGPORT",
      forceConflicts: false,
    };
    const { settings, problems } = read(raw);
    assert.deepStrictEqual(problems, []);
    assert.deepStrictEqual(settings, raw);
  });

  describe("refuses, naming the key", () => {
    it("a route that is neither pgbouncer nor direct", () =>
      expectProblem(
        { route: "postgres" },
        /^clipper-pgbouncer:backend\.route: is "postgres"; must be one of "pgbouncer", "direct"/,
      ));
    it("a namespace that is not an RFC 1123 label", () =>
      expectProblem(
        { namespace: "Backend_NS" },
        /^clipper-pgbouncer:backend\.namespace: is "Backend_NS"; must be a Kubernetes namespace name/,
      ));
    it("an empty namespace", () =>
      expectProblem(
        { namespace: "" },
        /^clipper-pgbouncer:backend\.namespace: is ""; must be a non-empty string/,
      ));
    it("a ConfigMap name that is not a Kubernetes object name", () =>
      expectProblem(
        { configMapName: "Backend Config" },
        /^clipper-pgbouncer:backend\.configMapName: is "Backend Config"; must be a Kubernetes object name/,
      ));
    it("a Deployment name that is not a Kubernetes object name", () =>
      expectProblem(
        { deploymentName: "-backend" },
        /^clipper-pgbouncer:backend\.deploymentName: is "-backend"; must be a Kubernetes object name/,
      ));
    it("a host key that is no environment variable name", () =>
      expectProblem(
        { hostKey: "DB-HOST" },
        /^clipper-pgbouncer:backend\.hostKey: is "DB-HOST"; must be an environment variable name/,
      ));
    it("a port key that is no environment variable name", () =>
      expectProblem(
        { portKey: "1PORT" },
        /^clipper-pgbouncer:backend\.portKey: is "1PORT"; must be an environment variable name/,
      ));
    it("the same key for host and port", () =>
      expectProblem(
        { hostKey: "DB", portKey: "DB" },
        /^clipper-pgbouncer:backend\.portKey: is "DB"; must differ from clipper-pgbouncer:backend\.hostKey/,
      ));
    it("a forceConflicts that is not a boolean", () =>
      expectProblem(
        { forceConflicts: "yes" },
        /^clipper-pgbouncer:backend\.forceConflicts: is "yes"; must be true or false/,
      ));
    it("an unknown field (a typo must not fall back to a default)", () =>
      expectProblem({ rout: "direct" }, /^clipper-pgbouncer:backend\.rout: is not a known setting/));
    it("a section that is not an object", () =>
      expectProblem("direct", /^clipper-pgbouncer:backend: must be an object, got "direct"/));
  });

  describe("in the stack settings", () => {
    for (const stack of ["staging", "prod"]) {
      it(`${stack}'s stack file routes the backend through the pooler`, () => {
        const s = loadStackSettings(stack);
        assert.strictEqual(s.backend.route, "pgbouncer");
        assert.strictEqual(s.backend.configMapName, BACKEND_ROUTE_DEFAULTS.configMapName);
        assert.strictEqual(s.backend.deploymentName, BACKEND_ROUTE_DEFAULTS.deploymentName);
      });
    }

    it("a bad backend setting stops the whole stack with a ConfigError naming it", () => {
      const raw = { ...rawStackConfig(stackFileConfig("prod")), backend: { route: "sideways" } };
      assert.throws(
        () => parseSettings(raw),
        (e: unknown) =>
          e instanceof ConfigError && e.issues.some((i) => i.key === "clipper-pgbouncer:backend.route"),
      );
    });
  });
});
