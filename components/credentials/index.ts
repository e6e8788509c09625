export * from "./build";
export * from "./login";
export * from "./secrets";
export * from "./settings";
export * from "./types";
export * from "./vault";
