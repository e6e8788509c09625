// The pure modules of the credentials: settings, the auth file and its secrets, the checks of the Vault
// secret. Nothing here (nor below it) imports a provider SDK: the policy pack and the tools load this barrel.
// The Vault read: ./resources.ts.
export * from "./auth-entries";
export * from "./auth-query";
export * from "./build";
export * from "./login";
export * from "./problems";
export * from "./secret-reader";
export * from "./secrets";
export * from "./settings";
export * from "./types";
export * from "./vault-keys";
