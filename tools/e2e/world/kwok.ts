/**
 * kwok and its fake nodes: Ready with leases, pods taken through their lifecycle by kwok's stages (no
 * kubelet, no container: kwok sets a pod's phase, its Ready condition and its IP itself), so StatefulSets and
 * Deployments roll out and drains evict for real on the local control plane.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type Kubectl, type KubectlRaw, asList, exists, getJson, waitFor } from "../clients/kubectl";
import { type Servers, chownToRunUser } from "./processes";

/** The fake nodes kwok manages (this annotation selects them). */
export const FAKE_NODE_ANNOTATION = { key: "kwok.x-k8s.io/node", value: "fake" };
export const NODE_NAMES = ["kwok-node-0", "kwok-node-1", "kwok-node-2"];

/**
 * A second pool of three fake nodes for the maintenance render's drains, so that they run beside the
 * scenarios: tainted (NoSchedule), so no pod of a stack lands there, and labelled, so that the render's
 * pods, given the toleration and the node selector (`onMaintenancePool`), land there only. A drain evicts
 * every pod of its node; on this pool those are the maintenance part's own.
 */
export const MAINTENANCE_POOL = {
  nodes: ["kwok-maint-0", "kwok-maint-1", "kwok-maint-2"],
  label: { key: "clipper.io/e2e-pool", value: "maintenance" },
} as const;

export interface KwokOptions {
  /** The admin's kubeconfig of the local control plane. */
  readonly kubeconfig: string;
  readonly kubectl: Kubectl;
  readonly raw: KubectlRaw;
  /** kwok's stage configs (the toolchain's). */
  readonly stages: readonly string[];
}

/**
 * When a terminating pod goes: 1 to 2 s after its deletion starts, kwok's stand-in for a kubelet that has
 * run the pod's end. kwok's own pod-delete stage deletes it at a random moment before its deletionTimestamp,
 * i.e. anywhere within the pooler's 120 s grace period, which every `pulumi destroy`, roll and drain then
 * waited for. These seconds are kwok's, not PgBouncer's: no container runs, so no preStop hook sleeps and no
 * script drains. On a kubelet the pod goes after the preStop sleep (`pgbouncer.preStopDelaySeconds`) and the
 * script's drain, within `pgbouncer.terminationGracePeriodSeconds`: npm test's fleet tests measure that on
 * the real binaries.
 */
export const POD_DELETE_STAGE = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
    - key: '.metadata.finalizers'
      operator: 'DoesNotExist'
  weight: 1
  delay:
    durationMilliseconds: 1000
    jitterDurationMilliseconds: 2000
  next:
    delete: true`;

/** Starts kwok, creates the fake nodes and waits until they are Ready and pods can be created. */
export async function startKwok(c: Servers, o: KwokOptions): Promise<void> {
  const stageFile = path.join(c.dir, "kwok-stages.yaml");
  const stages = [...o.stages.map((f) => fs.readFileSync(f, "utf8").trim()), POD_DELETE_STAGE];
  fs.writeFileSync(stageFile, stages.join("\n---\n") + "\n");
  await chownToRunUser(stageFile);
  const kwok = c.start("kwok", c.serverBin("kwok"), [
    `--kubeconfig=${o.kubeconfig}`,
    `--config=${stageFile}`,
    "--manage-all-nodes=false",
    `--manage-nodes-with-annotation-selector=${FAKE_NODE_ANNOTATION.key}=${FAKE_NODE_ANNOTATION.value}`,
    // Without leases the node-lifecycle controller marks the fake nodes NotReady every ~50 s.
    "--node-lease-duration-seconds=40",
    "--cidr=10.244.0.0/16",
  ]);
  await o.kubectl(["apply", "--server-side", "--field-manager=clipper-e2e", "-f", "-"], {
    input: asList([
      ...NODE_NAMES.map((n) => fakeNode(n)),
      ...MAINTENANCE_POOL.nodes.map((n) => fakeNode(n, true)),
    ]),
  });
  await waitFor(
    `${NODE_NAMES.length + MAINTENANCE_POOL.nodes.length} fake nodes Ready`,
    async () => {
      await c.alive(kwok)();
      const nodes = await getJson<{
        items: { status?: { conditions?: { type: string; status: string }[] } }[];
      }>(o.kubectl, ["nodes", "-l", "type=kwok"]);
      const ready = nodes.items.filter((n) =>
        (n.status?.conditions ?? []).some((x) => x.type === "Ready" && x.status === "True"),
      );
      return ready.length === NODE_NAMES.length + MAINTENANCE_POOL.nodes.length ? true : undefined;
    },
    60_000,
  );
  // Pods can only be created in a namespace once the controller-manager has made its ServiceAccount.
  await waitFor("the default ServiceAccount", async () =>
    (await exists(o.raw, ["serviceaccount", "default", "-n", "default"])) ? true : undefined,
  );
}

function fakeNode(name: string, maintenance = false): Record<string, unknown> {
  const { key, value } = MAINTENANCE_POOL.label;
  return {
    apiVersion: "v1",
    kind: "Node",
    ...(maintenance ? { spec: { taints: [{ key, value, effect: "NoSchedule" }] } } : {}),
    metadata: {
      name,
      annotations: {
        [FAKE_NODE_ANNOTATION.key]: FAKE_NODE_ANNOTATION.value,
        "node.alpha.kubernetes.io/ttl": "0",
      },
      labels: {
        type: "kwok",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        ...(maintenance ? { [key]: value } : {}),
      },
    },
    status: {
      allocatable: { cpu: "8", memory: "32Gi", pods: "110" },
      capacity: { cpu: "8", memory: "32Gi", pods: "110" },
    },
  };
}
