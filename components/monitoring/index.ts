export * from "./component";
export * from "./dashboard";
export * from "./metrics";
export * from "./queries";
export * from "./rules";
export * from "./scrape";
export * from "./settings";
export * from "./thresholds";
