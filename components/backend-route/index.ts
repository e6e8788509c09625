// The pure modules of the backend switch: settings, endpoints, the patches' data and options. Nothing here
// (nor below it) imports a provider SDK. The component: ./resources.ts.
export * from "./references";
export * from "./rename";
export * from "./route";
export * from "./settings";
