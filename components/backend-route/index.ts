export * from "./component";
export * from "./route";
export * from "./settings";
