/**
 * The certificate's expiry alerts through promtool: the rule the program writes from the expiry Vault
 * returned fires once less than `renewBeforeSeconds` remain (warning), and critically within the last days,
 * and not before. promtool's clock starts at 0, so the certificate "expires" 20 days after it.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import {
  CERTIFICATE_CRITICAL_SECONDS,
  certificateRuleGroup,
  renderRulesFile,
} from "../../components/monitoring";
import { loadStackSettings } from "../../stacks/settings";
import { promtool } from "../support/promtool";

const DAY = 86400;

describe("certificate expiry alerts through promtool", () => {
  const prod = loadStackSettings("prod");
  const cert = prod.tls.certificate;
  if (cert?.source !== "vault-pki") throw new Error("prod issues its certificate with Vault PKI");
  const renewBefore = cert.renewBeforeSeconds;
  const expiresAt = 20 * DAY;
  const group = certificateRuleGroup({
    expiresAt,
    renewBeforeSeconds: renewBefore,
    subject: "pgbouncer.clipper.svc.cluster.local",
    runbookBaseUrl: prod.monitoring.runbookBaseUrl,
    evaluationIntervalSeconds: prod.monitoring.evaluationIntervalSeconds,
  });
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "clipper-cert-rules-"));
    fs.writeFileSync(path.join(dir, "cert.yml"), renderRulesFile(group));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("passes promtool check rules", () => {
    const r = promtool(["check", "rules", "cert.yml"], dir);
    assert.ok(r.ok && /SUCCESS: 2 rules found/.test(r.output), r.output);
  });

  it("fires RenewalDue once less than renewBeforeSeconds remain, and Expiring only in the last days", () => {
    // Annotations are compared verbatim after templating: test on a copy without them.
    const bare = { ...group, rules: group.rules.map((r) => ({ ...r, annotations: {} })) };
    fs.writeFileSync(path.join(dir, "bare.yml"), yaml.dump({ groups: [bare] }));
    const at = (seconds: number) => `${Math.round(seconds / 60)}m`;
    const expect = (alertname: string, t: number, severity?: string) => ({
      eval_time: at(t),
      alertname,
      exp_alerts: severity ? [{ exp_labels: { severity }, exp_annotations: {} }] : [],
    });
    const due = expiresAt - renewBefore;
    const critical = expiresAt - CERTIFICATE_CRITICAL_SECONDS;
    const tests = {
      rule_files: ["bare.yml"],
      evaluation_interval: "1h",
      tests: [
        {
          interval: "1h",
          input_series: [],
          alert_rule_test: [
            expect("PgBouncerCertificateRenewalDue", due - 2 * 3600),
            expect("PgBouncerCertificateRenewalDue", due + 2 * 3600, "warning"),
            expect("PgBouncerCertificateExpiring", due + 2 * 3600),
            expect("PgBouncerCertificateExpiring", critical + 2 * 3600, "critical"),
            expect("PgBouncerCertificateRenewalDue", critical + 2 * 3600, "warning"),
          ],
        },
      ],
    };
    fs.writeFileSync(path.join(dir, "tests.yml"), yaml.dump(tests));
    const r = promtool(["test", "rules", "tests.yml"], dir);
    assert.ok(r.ok, r.output);
  });

  it("a promtool run on the wrong expectation fails (the test can fail)", () => {
    const tests = {
      rule_files: ["cert.yml"],
      evaluation_interval: "1h",
      tests: [
        {
          interval: "1h",
          input_series: [],
          alert_rule_test: [
            {
              eval_time: "1h",
              alertname: "PgBouncerCertificateRenewalDue",
              exp_alerts: [{ exp_labels: { severity: "warning" } }],
            },
          ],
        },
      ],
    };
    fs.writeFileSync(path.join(dir, "wrong.yml"), yaml.dump(tests));
    assert.equal(promtool(["test", "rules", "wrong.yml"], dir).ok, false);
  });
});
