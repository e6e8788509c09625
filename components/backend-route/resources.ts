// The backend switch's Pulumi resources: the component and its two server-side apply patches. The pure
// modules: ./index.ts.
export * from "./component";
