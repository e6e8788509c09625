// The pure modules of the pooler: settings, checks, renderers and the pod's layout. Nothing here (nor below
// it) imports a provider SDK: the policy pack and the tools load this barrel. The component and the
// Kubernetes objects it builds: ./resources.ts.
export * from "./backend-tls";
export * from "./budget";
export * from "./checks";
export * from "./egress";
export * from "./fleet";
export * from "./ini";
export * from "./ini-reader";
export * from "./names";
export * from "./network-policy";
export * from "./no-reload";
export * from "./pod-ini";
export * from "./pod-layout";
export * from "./pod-script";
export * from "./references";
export * from "./release";
export * from "./settings";
export * from "./spread";
export * from "./tls-ini";
export * from "./tls-settings";
export * from "./versions";
