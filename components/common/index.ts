export * from "./issues";
export * from "./patterns";
export * from "./preflight";
export * from "./schema";
