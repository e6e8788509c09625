import { type StackSettings, parseSettings, rawStackConfig } from "../../stacks/settings";
import { listStacks, stackFileConfig } from "../../stacks/stack-file";

/** The validated settings of `Pulumi.<stack>.yaml`, as the program would read them. */
export function loadStackSettings(stack: string): StackSettings {
  return parseSettings(rawStackConfig(stackFileConfig(stack)));
}

export { listStacks };
