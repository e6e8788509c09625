import { deployEnvironment } from "./stacks/environment";
import { runError } from "./stacks/run-error";
import { runningStackConfig } from "./stacks/running-config";
import { parseStack } from "./stacks/settings";

// The whole stack config is validated before anything is registered; a refused setting or Vault value ends
// the program with one message listing every problem by key (a pulumi.RunError: no stack trace). A setting
// given as a Pulumi secret stays one, or is refused where it would be written in plaintext (docs/settings.md).
export = async () => {
  try {
    const { raw, secretSections } = runningStackConfig();
    const { value: settings, secretInputs } = parseStack(raw, secretSections);
    return await deployEnvironment(settings, { secretInputs });
  } catch (e) {
    throw runError(e);
  }
};
