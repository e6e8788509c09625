// The credentials' Pulumi side: the Vault read (@pulumi/vault). The pure modules: ./index.ts.
export * from "./vault";
