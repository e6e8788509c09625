// What the concerns share: the typed reader of stack settings and its problem list.
export * from "./config-reader";
