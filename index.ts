import * as pulumi from "@pulumi/pulumi";
import { deployEnvironment } from "./stacks/environment";
import { parseSettings } from "./stacks/settings";
import { rawStackConfig } from "./stacks/stack-file";

// The whole stack config is validated before anything is registered; a refused setting ends the program
// with every problem listed by key.
export = async () => deployEnvironment(parseSettings(rawStackConfig(pulumi.runtime.allConfig())));
