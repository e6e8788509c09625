// The pooler's Pulumi resources: the component and what it builds with the provider SDKs (the TLS objects,
// the pod spec and its containers, typed by @pulumi/kubernetes). The pure modules: ./index.ts.
export * from "./certificates";
export * from "./component";
export * from "./containers";
export * from "./pod-spec";
export * from "./vault-reads";
