// Monitoring's Pulumi resources: the component (PrometheusRule, PodMonitor or rules ConfigMap, the Grafana
// folder and dashboard). The pure modules: ./index.ts.
export * from "./component";
