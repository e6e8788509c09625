/**
 * docs/monitoring.md against the code: the alerts it lists are the rules' alerts, and the exhaustion level it
 * quotes for each stack is the one the alert derives.
 */
import * as assert from "assert";
import { ALERT_NAMES, deriveThresholds } from "../../components/monitoring";
import { loadStackSettings } from "../../stacks/settings";
import { listStacks } from "../../stacks/stack-file";
import { readDoc } from "../support/docs";

const PAGE = readDoc("docs/monitoring.md");
const ALERTS = PAGE.split(/^## Alerts$/m)[1]?.split(/^## /m)[0] ?? "";

describe("docs/monitoring.md", () => {
  it("lists exactly the alerts the rules define", () => {
    const listed = [...ALERTS.matchAll(/^\| `(PgBouncer\w+)`/gm)].map((m) => m[1]);
    assert.deepStrictEqual([...listed].sort(), [...ALERT_NAMES].sort());
  });

  it("quotes each stack's exhaustion level as the alert derives it", () => {
    const flat = PAGE.replace(/\s+/g, " ");
    for (const stack of listStacks()) {
      const s = loadStackSettings(stack);
      const t = deriveThresholds(s.pool, s.monitoring.exhaustionServerConnections);
      const quoted = `${t.exhaustionServerConnections} of ${stack}'s ${t.serverCap}`;
      assert.ok(flat.includes(quoted), quoted);
    }
  });
});
