export * from "./component";
export * from "./login";
export * from "./route";
export * from "./settings";
