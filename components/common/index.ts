export * from "./issues";
export * from "./patterns";
export * from "./schema";
