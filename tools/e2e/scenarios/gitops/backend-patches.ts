/**
 * GitOps: the render's patches of the backend's objects, applied last: DB_HOST and DB_PORT are the
 * render's outputs, owned by the pooler's field manager only; no render-set label on a patched object.
 */
import * as assert from "node:assert/strict";
import { FIELD_MANAGER } from "../../../../components/backend-route";
import { type KubeObject, getJson } from "../../clients/kubectl";
import { backendNamespace } from "../../fixtures";
import { RENDER_SET_LABEL } from "../../../../testing/manifests";
import type { GitOpsRun } from "./gitops-run";

export async function backendPatches(g: GitOpsRun): Promise<void> {
  const { A, s, k } = g;
  await g.run(g.cmds(A).patches, "apply patches");
  const bns = backendNamespace(s);
  const cm = await getJson<KubeObject & { data: Record<string, string> }>(k, [
    "configmap",
    s.backend.configMapName,
    "-n",
    bns,
    "--show-managed-fields",
  ]);
  assert.equal(cm.data[s.backend.hostKey], A.index.outputs.dbHost, "DB_HOST = the render's dbHost output");
  assert.equal(cm.data[s.backend.portKey], String(A.index.outputs.dbPort), "DB_PORT = the render's dbPort");
  const mine = (cm.metadata.managedFields ?? []).find((m) => m.manager === FIELD_MANAGER);
  const keys = Object.keys((mine?.fieldsV1 as Record<string, Record<string, unknown>>)?.["f:data"] ?? {});
  assert.deepEqual(keys.sort(), [`f:${s.backend.hostKey}`, `f:${s.backend.portKey}`].sort());
  assert.equal(cm.metadata.labels?.[RENDER_SET_LABEL], undefined, "no render-set label on a patched object");
  const dep = await getJson(k, ["deployment", s.backend.deploymentName, "-n", bns]);
  assert.equal(dep.metadata.labels?.[RENDER_SET_LABEL], undefined);
  g.log(
    `  plain annotations kubectl wrote onto backend-config: ${Object.keys(cm.metadata.annotations ?? {})
      .filter((a) => a.startsWith("pulumi.com/"))
      .join(", ")}`,
  );
}
