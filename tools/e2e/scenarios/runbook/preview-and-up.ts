/**
 * Step preview-and-up: the pooler's secret in Vault (both logins, the backends on the first), then
 * `pulumi preview` and `pulumi up`, as the runbook runs them (the policy pack; the up with `--refresh`).
 */
import { writeVaultSecret } from "../../fixtures";
import { type StackRun, backendRevision, pulumiUp } from "./stack-run";

export async function previewAndUp(r: StackRun): Promise<void> {
  await writeVaultSecret(r.vault, r.s, r.logins);
  await r.pulumi.ok(["preview", "--policy-pack", "policy"]);
  r.measured.backendRevision = await backendRevision(r);
  await pulumiUp(r);
}
