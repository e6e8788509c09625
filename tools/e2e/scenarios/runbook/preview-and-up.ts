/** Step preview-and-up: the pooler's secret in Vault, then `pulumi preview` and `pulumi up` (policy pack). */
import { writeVaultSecret } from "../../fixtures";
import { type StackRun, backendRevision, pulumiUp } from "./stack-run";

export async function previewAndUp(r: StackRun): Promise<void> {
  await writeVaultSecret(r.vault, r.s, 1);
  await r.pulumi.ok(["preview", "--policy-pack", "policy"]);
  r.measured.backendRevision = await backendRevision(r);
  await pulumiUp(r);
}
