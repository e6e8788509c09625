import * as pulumi from "@pulumi/pulumi";
import { deployEnvironment } from "./stacks/environment";
import { runError } from "./stacks/run-error";
import { parseSettings } from "./stacks/settings";
import { rawStackConfig } from "./stacks/stack-file";

// The whole stack config is validated before anything is registered; a refused setting or Vault value ends
// the program with one message listing every problem by key (a pulumi.RunError: no stack trace).
export = async () => {
  try {
    return await deployEnvironment(parseSettings(rawStackConfig(pulumi.runtime.allConfig())));
  } catch (e) {
    throw runError(e);
  }
};
