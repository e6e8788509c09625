import * as assert from "node:assert/strict";
import { FIELD_MANAGER } from "../../../components/backend-route";
import { type Pooler, PDB_REFUSAL, drain, startSampler } from "../../e2e/scenarios/maintenance/drain";
import type { KubectlRaw } from "../../e2e/clients/kubectl";
import { runbookConflictMessage } from "../../e2e/scenarios/ownership";

/** A pod as `kubectl get -o json` lists it. */
function pod(name: string, o: { ready: boolean; terminating?: boolean }) {
  return {
    kind: "Pod",
    metadata: {
      name,
      labels: { "controller-revision-hash": "pgbouncer-abc" },
      ...(o.terminating ? { deletionTimestamp: "2026-12-01T00:00:00Z" } : {}),
    },
    spec: { nodeName: "n1" },
    status: { phase: "Running", conditions: [{ type: "Ready", status: o.ready ? "True" : "False" }] },
  };
}
const pdb = (allowed: number) => ({
  kind: "PodDisruptionBudget",
  metadata: { name: "pgbouncer-pdb" },
  status: { disruptionsAllowed: allowed, currentHealthy: 2, desiredHealthy: 1 },
});

/**
 * A pooler whose kubectl answers each `get` with the next of `frames` (the last one repeats); `served()` says
 * how many answers it gave.
 */
function fakePooler(frames: unknown[][]): Pooler & { served(): number } {
  let i = 0;
  return {
    served: () => i,
    kubectl: () => Promise.resolve(JSON.stringify({ items: frames[Math.min(i++, frames.length - 1)] })),
    raw: () => Promise.resolve({ code: 0, stdout: "", stderr: "" }),
    namespace: "clipper",
    workload: "pgbouncer",
    selector: "app.kubernetes.io/name=pgbouncer",
    replicas: 2,
    nodes: ["kwok-node-0", "kwok-node-1", "kwok-node-2"],
    log: () => undefined,
  };
}

/** Samples until every frame was seen and the last one twice more, however slow the machine is. */
async function sample(frames: unknown[][]) {
  const p = fakePooler(frames);
  const s = startSampler(p, { everyMs: 1, limitMs: 60_000 });
  while (p.served() < frames.length + 2) await new Promise((r) => setTimeout(r, 5));
  return s.stop();
}

describe("e2e drain sampler (the PDB never lets both replicas go)", () => {
  it("reports nothing while both pods serve, or one serves and the PDB allows nothing", async () => {
    const r = await sample([
      [pod("a", { ready: true }), pod("b", { ready: true }), pdb(1)],
      [pod("a", { ready: true }), pod("b", { ready: true, terminating: true }), pdb(0)],
      [pod("a", { ready: true }), pod("c", { ready: false }), pdb(0)],
      [pod("a", { ready: true }), pod("c", { ready: true }), pdb(1)],
    ]);
    assert.deepEqual(r.violations, []);
    assert.equal(r.minServing, 1);
    assert.ok(r.samples > 4);
  });

  it("reports a moment with no pod serving (a terminating pod does not serve)", async () => {
    const r = await sample([
      [pod("a", { ready: true }), pod("b", { ready: true }), pdb(1)],
      [pod("a", { ready: true, terminating: true }), pod("b", { ready: false }), pdb(0)],
      [pod("a", { ready: true }), pod("b", { ready: true }), pdb(1)],
    ]);
    assert.equal(r.minServing, 0);
    assert.match(r.violations[0], /0 pods serving/);
  });

  it("reports a PDB that allows a disruption while only one pod serves, seen twice in a row", async () => {
    const r = await sample([[pod("a", { ready: true }), pod("b", { ready: false }), pdb(1)]]);
    assert.match(r.violations[0], /1 pods serving while the PDB allows 1 disruption/);
  });

  it("counts the pods seen at once, a terminating one included (a StatefulSet never exceeds its replicas)", async () => {
    const r = await sample([
      [pod("a", { ready: true }), pod("b", { ready: true }), pdb(1)],
      [pod("a", { ready: true }), pod("b", { ready: true, terminating: true }), pdb(0)],
      [pod("a", { ready: true }), pod("b", { ready: false }), pdb(0)],
    ]);
    assert.equal(r.maxPods, 2);
    const surge = await sample([
      [pod("a", { ready: true }), pod("b", { ready: true }), pod("c", { ready: false }), pdb(1)],
    ]);
    assert.equal(surge.maxPods, 3);
  });

  it("lets the PDB's status trail the pods by one sample", async () => {
    const r = await sample([
      [pod("a", { ready: true }), pod("b", { ready: false }), pdb(1)],
      [pod("a", { ready: true }), pod("b", { ready: false }), pdb(0)],
    ]);
    assert.deepEqual(r.violations, []);
  });
});

describe("e2e drain", () => {
  it("counts the PDB's refusals in kubectl drain's output and passes the runbook's flags", async () => {
    let argv: readonly string[] = [];
    const raw: KubectlRaw = (args) => {
      argv = args;
      return Promise.resolve({
        code: 0,
        stdout: `evicting pod clipper/pgbouncer-1\n`,
        stderr:
          `error when evicting pods/"pgbouncer-2" -n "clipper" (will retry after 5s): ${PDB_REFUSAL}.\n`.repeat(
            3,
          ),
      });
    };
    const d = await drain({ raw, log: () => undefined }, "n2", 120);
    assert.equal(d.pdbRefusals, 3);
    assert.deepEqual(argv.slice(0, 5), [
      "drain",
      "n2",
      "--ignore-daemonsets",
      "--delete-emptydir-data",
      "--timeout=120s",
    ]);
  });
});

describe("e2e field ownership", () => {
  it("asserts the conflict message the runbook quotes, which names the pooler's field manager", () => {
    assert.match(
      runbookConflictMessage(),
      new RegExp(`^Apply failed with 2 conflicts: conflicts with "${FIELD_MANAGER}"$`),
    );
  });
});
