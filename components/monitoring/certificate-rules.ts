/**
 * The certificate alerts. No exporter reports the certificate's expiry, but the program knows it when it
 * issues the certificate (Vault PKI), so it writes the expiry into the rule as a number: every `pulumi up --refresh`
 * that re-issues the certificate rewrites the rule with it. Nothing feeds these rules for a certificate the
 * program did not issue (`tls.certificate.source: secret`); there, the Secret's owner watches it
 * (docs/runbook.md, "TLS").
 */
import type { AlertRule, RuleGroup } from "./rules";
import { seconds } from "./rules";

export const CERTIFICATE_ALERT_NAMES = [
  "PgBouncerCertificateRenewalDue",
  "PgBouncerCertificateExpiring",
] as const;
export type CertificateAlertName = (typeof CERTIFICATE_ALERT_NAMES)[number];

/** Below this much validity the certificate alert is critical: a few days to run `pulumi up`. */
export const CERTIFICATE_CRITICAL_SECONDS = 3 * 86400;

export interface CertificateRuleInput {
  /** The certificate's expiry, Unix seconds, as Vault returned it. */
  readonly expiresAt: number;
  /** `tls.certificate.renewBeforeSeconds`: a `pulumi up --refresh` after this point re-issues it. */
  readonly renewBeforeSeconds: number;
  /** What the certificate is for, in the alert's text, e.g. `pgbouncer.clipper.svc.cluster.local`. */
  readonly subject: string;
  readonly runbookBaseUrl: string;
  readonly evaluationIntervalSeconds: number;
}

/** The group: due for renewal (warning), then about to expire (critical). Values are seconds left. */
export function certificateRuleGroup(c: CertificateRuleInput): RuleGroup<CertificateAlertName> {
  const left = `vector(${c.expiresAt} - time())`;
  const rule = (
    alert: CertificateAlertName,
    severity: "warning" | "critical",
    below: number,
    summary: string,
  ): AlertRule<CertificateAlertName> => ({
    alert,
    expr: `${left} < ${below}`,
    for: "0s",
    labels: { severity },
    annotations: {
      summary,
      description:
        `The client certificate of ${c.subject}, issued by Vault PKI, expires in {{ $value | humanizeDuration }} ` +
        `(at ${new Date(c.expiresAt * 1000).toISOString()}). A pulumi up --refresh re-issues it once less than ` +
        `${c.renewBeforeSeconds}s remain, so none has run since then.`,
      runbook_url: `${c.runbookBaseUrl}#tls-what-the-backend-verifies`,
    },
  });
  return {
    name: "pgbouncer-certificate",
    interval: seconds(c.evaluationIntervalSeconds),
    rules: [
      rule(
        "PgBouncerCertificateRenewalDue",
        "warning",
        c.renewBeforeSeconds,
        `PgBouncer's certificate for ${c.subject} is due for renewal: run pulumi up --refresh`,
      ),
      rule(
        "PgBouncerCertificateExpiring",
        "critical",
        Math.min(CERTIFICATE_CRITICAL_SECONDS, c.renewBeforeSeconds),
        `PgBouncer's certificate for ${c.subject} expires within days: clients will refuse it`,
      ),
    ],
  };
}
