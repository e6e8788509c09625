import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as grafana from "@pulumiverse/grafana";
import type { PoolSettings } from "../pgbouncer";
import { renderDashboardJson } from "./dashboard";
import { queryContext } from "./queries";
import { certificateRuleGroup } from "./certificate-rules";
import { alertRuleGroup, prometheusRuleSpec, renderRulesFile } from "./rules";
import { RULES_CONFIGMAP, kubernetesScrapeJob, podMonitorSpec } from "./scrape";
import type { MonitoringSettings } from "./settings";

/** Key of the rules file in the plain-mode ConfigMap. */
export const RULES_FILE_KEY = "pgbouncer-rules.yml";
/** Key of the certificate's rules file in the plain-mode ConfigMap. */
export const CERTIFICATE_RULES_FILE_KEY = "pgbouncer-certificate-rules.yml";

/** The certificate the program issued, for its expiry alerts. */
export interface WatchedCertificate {
  /** Unix seconds. */
  readonly expiresAt: pulumi.Input<number>;
  readonly renewBeforeSeconds: number;
  /** Its common name, for the alert's text. */
  readonly subject: pulumi.Input<string>;
}

export interface PgBouncerMonitoringArgs {
  /** Namespace of the pooler; the PrometheusRule, PodMonitor or rules ConfigMap go there too. */
  readonly namespace: string;
  /** The pool the thresholds derive from (per-process `max_db_connections`, `max_client_conn`, ...). */
  readonly pool: PoolSettings;
  readonly monitoring: MonitoringSettings;
  /**
   * The client certificate the program issued: its expiry alerts are added. @default none (no certificate,
   * or one the program did not issue)
   */
  readonly certificate?: WatchedCertificate;
  /** Labels of the PgBouncer pods (the Deployment's selector); at least one. */
  readonly podSelector: Readonly<Record<string, string>>;
  /** Names of the exporters' container ports, one per PgBouncer process of a pod. @default ["metrics"] */
  readonly metricsPortNames?: readonly string[];
  /** Dashboard title. @default "PgBouncer (<namespace>)" */
  readonly dashboardTitle?: string;
}

/**
 * Scraping, alerting and the dashboard for one PgBouncer Deployment. prometheus-operator mode: a
 * PodMonitor and a PrometheusRule labelled for the operator's selectors; plain mode: a rules ConfigMap and
 * `scrapeJob` for the Prometheus configuration (pods are found through their `prometheus.io/*`
 * annotations, see `scrapeAnnotations`). Its Kubernetes objects, Grafana folder and dashboard go through the
 * providers it is given (`opts.providers`: the stack's, pinned to its cluster and Grafana).
 */
export class PgBouncerMonitoring extends pulumi.ComponentResource {
  /** The Prometheus `scrape_configs` entry (plain mode), or undefined when the operator scrapes. */
  readonly scrapeJob: pulumi.Output<Record<string, unknown> | undefined>;
  /** The rules as a Prometheus rules file (what the PrometheusRule or ConfigMap carries). */
  readonly rulesYaml: pulumi.Output<string>;
  /** The dashboard's URL in Grafana, when the dashboard is pushed. */
  readonly dashboardUrl: pulumi.Output<string | undefined>;
  /** The rules ConfigMap's name (plain mode), or undefined when the operator loads PrometheusRules. */
  readonly rulesConfigMap: pulumi.Output<string | undefined>;

  constructor(name: string, args: PgBouncerMonitoringArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("clipper:monitoring:PgBouncerMonitoring", name, {}, opts);
    if (Object.keys(args.podSelector).length === 0) {
      throw new pulumi.ResourceError(
        "podSelector must name at least one pod label, or every pod is scraped",
        this,
      );
    }
    const m = args.monitoring;
    const target = {
      namespace: args.namespace,
      podSelector: args.podSelector,
      portNames: args.metricsPortNames,
    };
    const group = alertRuleGroup(args.pool, m);
    const rulesYaml = renderRulesFile(group);
    const cert = args.certificate;
    const certGroup = cert
      ? pulumi.all([cert.expiresAt, cert.subject]).apply(([expiresAt, subject]) =>
          certificateRuleGroup({
            expiresAt,
            subject,
            renewBeforeSeconds: cert.renewBeforeSeconds,
            runbookBaseUrl: m.runbookBaseUrl,
            evaluationIntervalSeconds: m.evaluationIntervalSeconds,
          }),
        )
      : undefined;

    let rulesConfigMap: pulumi.Output<string | undefined> = pulumi.output(undefined);
    if (m.mode === "prometheus-operator") {
      new k8s.apiextensions.CustomResource(
        `${name}-rules`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "PrometheusRule",
          metadata: { namespace: args.namespace, labels: { ...m.ruleLabels } },
          spec: prometheusRuleSpec(group),
        },
        { parent: this },
      );
      if (certGroup) {
        new k8s.apiextensions.CustomResource(
          `${name}-certificate-rules`,
          {
            apiVersion: "monitoring.coreos.com/v1",
            kind: "PrometheusRule",
            metadata: { namespace: args.namespace, labels: { ...m.ruleLabels } },
            spec: certGroup.apply(prometheusRuleSpec),
          },
          { parent: this },
        );
      }
      new k8s.apiextensions.CustomResource(
        `${name}-podmonitor`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "PodMonitor",
          metadata: { namespace: args.namespace, labels: { ...m.podMonitorLabels } },
          spec: podMonitorSpec(m, target),
        },
        { parent: this },
      );
    } else {
      // A fixed name and a label a rules sidecar selects: updated in place (the stack's Kubernetes provider
      // mutates ConfigMaps), never renamed by a new threshold or a renewed certificate's expiry.
      const rules = new k8s.core.v1.ConfigMap(
        `${name}-rules`,
        {
          metadata: {
            namespace: args.namespace,
            name: RULES_CONFIGMAP,
            labels: { ...m.rulesConfigMapLabels },
          },
          data: {
            [RULES_FILE_KEY]: rulesYaml,
            ...(certGroup ? { [CERTIFICATE_RULES_FILE_KEY]: certGroup.apply(renderRulesFile) } : {}),
          },
        },
        { parent: this },
      );
      rulesConfigMap = rules.metadata.name;
    }

    let dashboardUrl: pulumi.Output<string | undefined> = pulumi.output(undefined);
    if (m.dashboard) {
      const folder = new grafana.oss.Folder(`${name}-folder`, { title: m.grafanaFolder }, { parent: this });
      const dashboard = new grafana.oss.Dashboard(
        `${name}-dashboard`,
        {
          folder: folder.uid,
          overwrite: true,
          configJson: renderDashboardJson({
            uid: m.dashboardUid,
            title: args.dashboardTitle ?? `PgBouncer (${args.namespace})`,
            datasourceName: m.datasourceName,
            context: queryContext(args.pool, m),
          }),
        },
        { parent: this },
      );
      dashboardUrl = dashboard.url;
    }

    this.scrapeJob = pulumi.output(
      m.mode === "plain" ? (kubernetesScrapeJob(m, target) as Record<string, unknown>) : undefined,
    );
    this.rulesYaml = pulumi.output(rulesYaml);
    this.dashboardUrl = dashboardUrl;
    this.rulesConfigMap = rulesConfigMap;
    this.registerOutputs({
      scrapeJob: this.scrapeJob,
      rulesYaml: this.rulesYaml,
      dashboardUrl: this.dashboardUrl,
      rulesConfigMap: this.rulesConfigMap,
    });
  }
}
