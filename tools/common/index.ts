export * from "./args";
export * from "./process";
export * from "./timing";
