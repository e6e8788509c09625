import { liveWorld, runProgram } from "./stacks/program";

// The whole stack config is validated before anything is registered, and the shell is checked against the
// stack's pinned cluster, Vault and Grafana; a refused setting, shell or Vault value ends the program with one
// message listing every problem by key (a pulumi.RunError: no stack trace). A setting given as a Pulumi
// secret stays one, or is refused where it would be written in plaintext (docs/settings.md).
export = () => runProgram(liveWorld());
