/** Step no-changes: a second `pulumi preview` after the `up` has nothing to do. */
import type { StackRun } from "./stack-run";

export async function noChanges(r: StackRun): Promise<void> {
  await r.pulumi.ok(["preview", "--expect-no-changes", "--policy-pack", "policy"]);
}
