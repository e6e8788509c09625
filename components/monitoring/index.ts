export { PgBouncerMonitoring, type PgBouncerMonitoringArgs, RULES_FILE_KEY } from "./component";
export { buildDashboard, panelSpecs, renderDashboardJson } from "./dashboard";
export { EXPORTER_METRICS, checkExpression, metricNamesIn } from "./metrics";
export { queries, queryContext } from "./queries";
export {
  ALERT_NAMES,
  alertRuleGroup,
  prometheusRuleManifest,
  prometheusRuleSpec,
  renderRulesFile,
} from "./rules";
export { kubernetesScrapeJob, podMonitorSpec, scrapeAnnotations, staticScrapeJob } from "./scrape";
export { MONITORING_DEFAULTS, type MonitoringSettings, readMonitoring } from "./settings";
export { ALERT_POLICY, deriveThresholds } from "./thresholds";
