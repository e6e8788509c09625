/**
 * The dashboard each stack pushes, against Grafana's own dashboard schema: the `configJson` of the program's
 * Grafana Dashboard resource, rendered by the offline engine, handed to the validator built from the schema
 * types Grafana publishes (`tools/monitoring/dashboard-schema`, a Go program over grafana-foundation-sdk/go
 * that `tools/install-test-deps.sh` builds). Negative controls break that dashboard one way at a time, and
 * each must fail with the line that names the break. Fails, never skips, when the validator is missing or
 * older than its sources.
 */
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadStackSettings } from "../../stacks/settings";
import { PROJECT_DIR, listStacks } from "../../stacks/stack-file";
import { runOffline } from "../../testing/engine";
import { offlineVault } from "../../testing/offline-vault";

const SOURCE = path.join(PROJECT_DIR, "tools", "monitoring", "dashboard-schema");
const BIN_DIR = path.join(PROJECT_DIR, ".deps", "dashboard-schema");
const VALIDATOR = path.join(BIN_DIR, "dashboard-schema");
const DASHBOARD_TYPE = "grafana:oss/dashboard:Dashboard";
const INSTALL = "run `bash tools/install-test-deps.sh`";

const SDK = "github.com/grafana/grafana-foundation-sdk/go";

/** The SDK version go.mod requires. */
function sdkVersion(): string {
  const goMod = fs.readFileSync(path.join(SOURCE, "go.mod"), "utf8");
  const version = /^\s*(?:require\s+)?github\.com\/grafana\/grafana-foundation-sdk\/go\s+(v\S+)/m.exec(goMod);
  assert.ok(version, `no ${SDK} version in go.mod`);
  return version[1];
}

/** What install-test-deps.sh keys the build by: the SDK version and a hash of go.mod, go.sum, *.go. */
function sourceKey(): string {
  const goFiles = fs
    .readdirSync(SOURCE)
    .filter((f) => f.endsWith(".go"))
    .sort();
  const hash = crypto.createHash("sha256");
  for (const f of ["go.mod", "go.sum", ...goFiles]) hash.update(fs.readFileSync(path.join(SOURCE, f)));
  return `${sdkVersion()}-${hash.digest("hex").slice(0, 16)}`;
}

function validate(...files: string[]): { status: number | null; lines: string[] } {
  const r = spawnSync(VALIDATOR, files, { encoding: "utf8" });
  if (r.error) throw r.error;
  return { status: r.status, lines: `${r.stdout}${r.stderr}`.split("\n").filter((l) => l !== "") };
}

interface DashboardJson {
  uid: string;
  panels: {
    type: string;
    title: string;
    id?: number;
    targets?: Record<string, unknown>[];
    datasource?: { type?: string; uid?: string };
    [k: string]: unknown;
  }[];
  [k: string]: unknown;
}

/** How the validator names panel `i`. */
function panelLabel(d: DashboardJson, i: number): string {
  const p = d.panels[i];
  return `panel "${p.title}" (panels[${i}], ${p.id === undefined ? "no id" : `id ${p.id}`})`;
}

/** The queries of panel `i`, which the render gives every panel. */
function targetsOf(d: DashboardJson, i: number): Record<string, unknown>[] {
  const t = d.panels[i].targets;
  assert.ok(t && t.length > 0, `panel ${i} has no targets to break`);
  return t;
}

describe("the dashboard against Grafana's schema (grafana-foundation-sdk, tools/monitoring/dashboard-schema)", () => {
  let dir: string;
  const rendered = new Map<string, string>();

  before(async () => {
    if (!fs.existsSync(VALIDATOR)) {
      throw new Error(`the dashboard validator ${VALIDATOR} is not built: ${INSTALL}`);
    }
    const keyFile = path.join(BIN_DIR, "key");
    const built = fs.existsSync(keyFile) ? fs.readFileSync(keyFile, "utf8").trim() : "no key";
    if (built !== sourceKey()) {
      throw new Error(
        `the dashboard validator was built from other sources (${built}, now ${sourceKey()}): ${INSTALL}`,
      );
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-dashboard-schema-"));
    for (const stack of listStacks()) {
      const run = await runOffline({ stack, vault: offlineVault(stack) });
      const dashboards = run.resources.filter((r) => r.type === DASHBOARD_TYPE);
      assert.equal(dashboards.length, 1, `${stack}: ${dashboards.length} Grafana dashboards`);
      const json = dashboards[0].inputs.configJson;
      assert.equal(typeof json, "string", `${stack}: configJson is ${typeof json}`);
      rendered.set(stack, json as string);
    }
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("renders a dashboard for both stacks, each with its own uid", () => {
    assert.deepStrictEqual([...rendered.keys()].sort(), ["prod", "staging"]);
    for (const [stack, json] of rendered) {
      assert.equal((JSON.parse(json) as DashboardJson).uid, loadStackSettings(stack).monitoring.dashboardUid);
    }
  });

  it("every stack's dashboard passes, each of its panels and queries read", () => {
    const files = [...rendered].map(([stack, json]) => {
      const file = path.join(dir, `${stack}.json`);
      fs.writeFileSync(file, json);
      return { file, d: JSON.parse(json) as DashboardJson };
    });
    const r = validate(...files.map((f) => f.file));
    assert.equal(r.status, 0, r.lines.join("\n"));
    assert.deepStrictEqual(
      r.lines,
      files.map(({ file, d }) => {
        const queries = d.panels.reduce((n, p) => n + (p.targets?.length ?? 0), 0);
        return `${file}: ok: ${d.panels.length} panels, ${queries} queries (${SDK} ${sdkVersion()})`;
      }),
    );
  });

  describe("negative controls: prod's dashboard broken one way fails with the line that names it", () => {
    const prod = () => JSON.parse(rendered.get("prod") ?? "{}") as DashboardJson;
    const first = (d: DashboardJson, type: string) => {
      const i = d.panels.findIndex((p) => p.type === type);
      assert.ok(i >= 0, `no ${type} panel`);
      return i;
    };
    const controls: {
      name: string;
      /**
       * Breaks the dashboard; returns the index of the panel it broke and the message expected there (a
       * pattern where the words are Go's encoding/json's, not the validator's).
       */
      breakIt: (d: DashboardJson) => { panel: number; message: string | RegExp };
    }[] = [
      {
        name: "an unknown field in a panel",
        breakIt: (d) => {
          d.panels[0].titel = "typo";
          return { panel: 0, message: "Panel: unexpected field 'titel'" };
        },
      },
      {
        name: "an unknown field in a query (the prometheus plugin's type)",
        breakIt: (d) => {
          targetsOf(d, 1)[0].exprr = "up";
          return { panel: 1, message: "targets[0].Dataquery: unexpected field 'exprr'" };
        },
      },
      {
        name: "an unknown field in fieldConfig.defaults (which the SDK's strict decode passes)",
        breakIt: (d) => {
          (d.panels[0].fieldConfig as { defaults: Record<string, unknown> }).defaults.unitt = "s";
          return { panel: 0, message: "fieldConfig.defaults.FieldConfig: unexpected field 'unitt'" };
        },
      },
      {
        name: "a wrong type in a panel (gridPos.w a string)",
        breakIt: (d) => {
          (d.panels[2].gridPos as Record<string, unknown>).w = "12";
          return { panel: 2, message: /^gridPos\.w: json: cannot unmarshal string into .*uint32$/ };
        },
      },
      {
        name: "a wrong type in a stat panel's options (reduceOptions.calcs a string)",
        breakIt: (d) => {
          const i = first(d, "stat");
          (d.panels[i].options as { reduceOptions: Record<string, unknown> }).reduceOptions.calcs =
            "lastNotNull";
          return {
            panel: i,
            message: /^options\.reduceOptions\.calcs: json: cannot unmarshal string into .*\[\]string$/,
          };
        },
      },
      {
        name: "a missing required option (a stat panel without reduceOptions)",
        breakIt: (d) => {
          const i = first(d, "stat");
          delete (d.panels[i].options as Record<string, unknown>).reduceOptions;
          return { panel: i, message: "options.reduceOptions: required field is missing from input" };
        },
      },
      {
        name: "a missing required option (a timeseries legend without placement)",
        breakIt: (d) => {
          const i = first(d, "timeseries");
          delete (d.panels[i].options as { legend: Record<string, unknown> }).legend.placement;
          return { panel: i, message: "options.legend.placement: required field is missing from input" };
        },
      },
      {
        name: "a value out of the schema's range (Validate: gridPos.w 25 of 24 columns)",
        breakIt: (d) => {
          (d.panels[3].gridPos as Record<string, unknown>).w = 25;
          return { panel: 3, message: "Panel.gridPos.w: must be <= 24" };
        },
      },
      {
        name: "a panel without targets",
        breakIt: (d) => {
          delete d.panels[4].targets;
          return { panel: 4, message: "no targets: the panel has no query" };
        },
      },
      {
        name: "a panel without a datasource (its queries keep theirs)",
        breakIt: (d) => {
          delete d.panels[5].datasource;
          return { panel: 5, message: "no datasource: the panel names neither a datasource uid nor a type" };
        },
      },
      {
        name: "a panel's datasource naming no variable of the dashboard",
        breakIt: (d) => {
          d.panels[5].datasource = { ...d.panels[5].datasource, uid: "${nosuchvariable}" };
          return {
            panel: 5,
            message: `datasource: uid "\${nosuchvariable}" names no datasource variable of the dashboard`,
          };
        },
      },
      {
        name: "a query of a datasource type no plugin registers",
        breakIt: (d) => {
          targetsOf(d, 6)[0].datasource = { type: "nosuchplugin", uid: "x" };
          return {
            panel: 6,
            message: `targets[0]: query of no known type (datasource type "nosuchplugin"), so its fields were not checked`,
          };
        },
      },
    ];

    for (const c of controls) {
      it(c.name, () => {
        const d = prod();
        const { panel, message } = c.breakIt(d);
        const file = path.join(dir, `${c.name.replace(/[^a-z0-9]+/gi, "-")}.json`);
        fs.writeFileSync(file, JSON.stringify(d, null, 2));
        const r = validate(file);
        assert.equal(r.status, 1, r.lines.join("\n"));
        const where = `${file}: ${panelLabel(d, panel)}: `;
        assert.equal(r.lines.length, 1, r.lines.join("\n"));
        assert.ok(r.lines[0].startsWith(where), `${r.lines[0]}\n does not start with ${where}`);
        const said = r.lines[0].slice(where.length);
        if (typeof message === "string") assert.equal(said, message);
        else assert.match(said, message);
      });
    }

    it("a dashboard without its required schemaVersion fails at the dashboard's level", () => {
      const d = prod();
      delete d.schemaVersion;
      const file = path.join(dir, "no-schema-version.json");
      fs.writeFileSync(file, JSON.stringify(d));
      const r = validate(file);
      assert.equal(r.status, 1, r.lines.join("\n"));
      assert.deepStrictEqual(r.lines, [
        `${file}: dashboard: schemaVersion: required field is missing from input`,
      ]);
    });
  });
});
