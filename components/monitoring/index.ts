// The pure modules of monitoring: settings, metric names, thresholds, rules, scrape config and the
// dashboard's JSON. Nothing here (nor below it) imports a provider SDK. The component: ./resources.ts.
export * from "./certificate-rules";
export * from "./dashboard";
export * from "./metrics";
export * from "./queries";
export * from "./rules";
export * from "./scrape";
export * from "./settings";
export * from "./thresholds";
