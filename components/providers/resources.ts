// The stack's providers: the Pulumi resources of this concern. The pure modules: ./index.ts.
export * from "./providers";
