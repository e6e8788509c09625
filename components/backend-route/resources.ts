// The backend switch's Pulumi resources: the component and its two server-side apply patches, and the read of
// the stack's own last outputs. The pure modules: ./index.ts.
export * from "./component";
export * from "./last-route";
