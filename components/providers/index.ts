// The pure modules of the providers: the settings that pin a stack's cluster, Vault and Grafana, the
// kubeconfig as kubectl reads it, and the check of the shell against the stack. Nothing here (nor below it)
// imports a provider SDK. The providers themselves: ./resources.ts.
export * from "./kube-client";
export * from "./kubeconfig";
export * from "./preflight";
export * from "./settings";
export * from "./targets";
