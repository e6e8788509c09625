export * from "./budget";
export * from "./component";
export * from "./ini";
export * from "./pod-ini";
export * from "./settings";
export * from "./spread";
export * from "./versions";
