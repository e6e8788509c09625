/**
 * The scenario, per stack: the runbook's steps against the real engine, each asserted on the cluster
 * through kubectl (never on Pulumi's own report). Steps are numbered as in the issue and the README.
 */
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { FIELD_MANAGER, ROUTE_ANNOTATION } from "../../components/backend-route";
import { DEPLOYMENT_NAME, SERVICE_NAME, settingsPoolBudget, ROLLING_SURGE } from "../../components/pgbouncer";
import type { StackSettings } from "../../stacks/settings";
import { PROJECT_DIR } from "../../stacks/stack-file";
import {
  BACKEND_FIELD_MANAGER,
  applyBackend,
  backendNamespace,
  vaultData,
  writeVaultSecret,
} from "./fixtures";
import { type KubeObject, getJson, list, waitFor } from "./kube";
import { compareRender } from "./offline-vs-live";
import { expectRotatedLogins } from "./rotation";
import type { PulumiStack } from "./pulumi";
import { verifyCommands } from "./runbook";
import { kvDelete } from "./vault";
import type { World } from "./world";
import { loadStackSettings } from "../../stacks/settings";

export interface ScenarioContext {
  readonly world: World;
  readonly stack: string;
  readonly pulumi: PulumiStack;
  readonly log: (line: string) => void;
}

/** The pooler's pods and everything selected by the pooler's labels. */
const POOLER_SELECTOR = "app.kubernetes.io/name=pgbouncer";
/** Kinds a snapshot covers: what the program creates, and what it patches. */
const SNAPSHOT_KINDS = [
  "deployments.apps",
  "replicasets.apps",
  "services",
  "configmaps",
  "secrets",
  "poddisruptionbudgets.policy",
  "networkpolicies.networking.k8s.io",
  "podmonitors.monitoring.coreos.com",
  "prometheusrules.monitoring.coreos.com",
].join(",");
/** Objects of the pooler that `destroy` must remove. */
const POOLER_KINDS = [
  "deployments.apps",
  "services",
  "poddisruptionbudgets.policy",
  "networkpolicies.networking.k8s.io",
  "podmonitors.monitoring.coreos.com",
  "prometheusrules.monitoring.coreos.com",
];
const RUN_ANNOTATION = "deployment.kubernetes.io/revision";

type Snapshot = Map<string, string>;

export async function runScenario(ctx: ScenarioContext): Promise<void> {
  const s = loadStackSettings(ctx.stack);
  const { pulumi: p, log } = ctx;
  const k = ctx.world.kubectl;
  const ns = s.namespace;
  const bns = backendNamespace(s);
  const vault = { addr: ctx.world.vaultAddr, token: ctx.world.vaultToken };
  const pooler = { host: `${SERVICE_NAME}.${ns}.svc.cluster.local`, port: s.workload.port };
  const direct = { host: s.database.host, port: s.database.port };
  const step = (n: string, title: string) => log(`\n[${ctx.stack}] step ${n}: ${title}`);

  const backendConfig = async () =>
    (
      await getJson<KubeObject & { data: Record<string, string> }>(k, [
        "configmap",
        s.backend.configMapName,
        "-n",
        bns,
      ])
    ).data;
  const backendRevision = async () =>
    revision(await getJson(k, ["deployment", s.backend.deploymentName, "-n", bns]));
  const snapshot = async (): Promise<Snapshot> => {
    const items = [
      ...(await list(k, SNAPSHOT_KINDS, ns)),
      ...(bns === ns ? [] : await list(k, SNAPSHOT_KINDS, bns)),
    ];
    // Generation where there is one (status updates do not count as a change), else the resourceVersion.
    return new Map(
      items.map((o) => [
        `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`,
        `${o.metadata.uid}@${o.metadata.generation ?? o.metadata.resourceVersion}`,
      ]),
    );
  };
  const expectRoute = async (want: { host: string; port: number }, route: string) => {
    const data = await backendConfig();
    assert.equal(data[s.backend.hostKey], want.host, `${s.backend.configMapName}.${s.backend.hostKey}`);
    assert.equal(
      data[s.backend.portKey],
      String(want.port),
      `${s.backend.configMapName}.${s.backend.portKey}`,
    );
    const out = await p.outputs();
    assert.equal(out.dbRoute, route, "stack output dbRoute");
    assert.equal(out.dbHost, data[s.backend.hostKey], "stack output dbHost = backend-config DB_HOST");
    assert.equal(String(out.dbPort), data[s.backend.portKey], "stack output dbPort = backend-config DB_PORT");
    const dep = await getJson<
      KubeObject & { spec: { template: { metadata: { annotations?: Record<string, string> } } } }
    >(k, ["deployment", s.backend.deploymentName, "-n", bns]);
    assert.equal(
      dep.spec.template.metadata.annotations?.[ROUTE_ANNOTATION],
      `${route}/${want.host}:${want.port}`,
    );
    await k(["-n", bns, "rollout", "status", `deployment/${s.backend.deploymentName}`, "--timeout=120s"]);
    return out;
  };

  await writeVaultSecret(vault, s, 1);

  step("1", "pulumi preview, then pulumi up, with the policy pack");
  await p.ok(["preview", "--policy-pack", "policy"]);
  const backendBefore = await backendRevision();
  await p.ok(["up", "--yes", "--skip-preview", "--policy-pack", "policy"]);

  step(
    "2",
    "the pooler runs: Deployment, pods under restricted, PDB, NetworkPolicy, Service, PodMonitor, rule",
  );
  await expectPoolerServing(ctx, s);

  step("3", "stack outputs equal what the backend's ConfigMap holds; the backend rolled once");
  const out = await expectRoute(pooler, "pgbouncer");
  assert.match(
    String(out.connectionUrl),
    new RegExp(`@${escape(pooler.host)}:${pooler.port}/${s.database.name}$`),
  );
  assert.equal(await backendRevision(), backendBefore + 1, "the backend rolled exactly once");
  await expectOwnership(ctx, s);
  for (const c of verifyCommands(ctx.stack, s)) {
    log(`$ ${c.command}`);
    const r = await sh(c.command, p.env);
    assert.equal(r.code, 0, `runbook's verify command failed: ${c.command}\n${r.output}`);
    if (c.expect !== undefined)
      assert.equal(r.stdout.trim(), c.expect, `runbook's verify command: ${c.command}`);
  }

  step("4", "a second preview has no changes");
  await p.ok(["preview", "--expect-no-changes", "--policy-pack", "policy"]);

  step(
    "5",
    "rotation: a new password in Vault, pulumi up: a new Secret and ReplicaSet, nothing else replaced; " +
      "the new Secret serves a real PgBouncer, stale passwords first",
  );
  const before = await snapshot();
  const poolerRevision = revision(await getJson(k, ["deployment", DEPLOYMENT_NAME, "-n", ns]));
  const secretsBefore = (await list(k, "secrets", ns, POOLER_SELECTOR)).map((o) => o.metadata.name);
  await writeVaultSecret(vault, s, 2);
  await p.ok(["up", "--yes", "--skip-preview", "--policy-pack", "policy"]);
  const secretsAfter = (await list(k, "secrets", ns, POOLER_SELECTOR)).map((o) => o.metadata.name);
  assert.equal(
    secretsAfter.length,
    1,
    `one pooler Secret after the rotation, got ${secretsAfter.join(", ")}`,
  );
  assert.ok(!secretsBefore.includes(secretsAfter[0]), "the Secret changed name");
  const dep = await getJson(k, ["deployment", DEPLOYMENT_NAME, "-n", ns]);
  assert.equal(revision(dep), poolerRevision + 1, "the pooler rolled once");
  await expectAvailable(ctx, ns, DEPLOYMENT_NAME, s.workload.replicas);
  const after = await snapshot();
  const replaced = [...before.keys()].filter(
    (key) =>
      !key.startsWith("Secret/") &&
      !key.startsWith("ReplicaSet/") &&
      after.get(key)?.split("@")[0] !== before.get(key)?.split("@")[0],
  );
  assert.deepEqual(replaced, [], "no other object was replaced");
  assert.equal(await backendRevision(), backendBefore + 1, "the backend did not roll on a pooler rotation");
  const [v1, v2] = [vaultData(s, 1), vaultData(s, 2)];
  log(
    await expectRotatedLogins(k, s, {
      user: v2[s.credentials.appUserKey],
      stale: v1[s.credentials.appPasswordKey],
      fresh: v2[s.credentials.appPasswordKey],
    }),
  );

  step("6", "rollback: backend.route direct, pulumi up; then back to pgbouncer");
  await p.configSet("backend.route", "direct");
  await p.ok(["up", "--yes", "--skip-preview", "--policy-pack", "policy"]);
  await expectRoute(direct, "direct");
  assert.equal(await backendRevision(), backendBefore + 2);
  await p.configSet("backend.route", "pgbouncer");
  await p.ok(["up", "--yes", "--skip-preview", "--policy-pack", "policy"]);
  await expectRoute(pooler, "pgbouncer");
  assert.equal(await backendRevision(), backendBefore + 3);

  step("7", "bad input: the Vault secret deleted, then an impossible pool budget; nothing changes");
  const steady = await snapshot();
  await kvDelete(vault, s.credentials.vaultMount, s.credentials.vaultPath);
  {
    const r = await p.run(["preview", "--policy-pack", "policy"]);
    assert.notEqual(r.code, 0, "pulumi preview must fail with the secret deleted");
    for (const word of [
      `mount "${s.credentials.vaultMount}"`,
      `path "${s.credentials.vaultPath}"`,
      `key "`,
    ]) {
      assert.ok(r.output.includes(word), `pulumi preview names ${word}:\n${tail(r.output)}`);
    }
  }
  assert.deepEqual(await snapshot(), steady, "nothing changed in the cluster");
  await writeVaultSecret(vault, s, 2);
  const tooMany = impossibleServerCap(s);
  await p.configSet("pool.maxDbConnections", String(tooMany));
  const broken = settingsPoolBudget({ ...s, pool: { ...s.pool, maxDbConnections: tooMany } });
  {
    const r = await p.run(["preview", "--policy-pack", "policy"]);
    assert.notEqual(r.code, 0, `pulumi preview must fail with pool.maxDbConnections ${tooMany}`);
    assert.ok(r.output.includes(broken.arithmetic), `pulumi preview gives the sum:\n${tail(r.output)}`);
  }
  assert.deepEqual(await snapshot(), steady, "nothing changed in the cluster");
  await p.configSet("pool.maxDbConnections", String(s.pool.maxDbConnections));
  await p.ok(["preview", "--expect-no-changes", "--policy-pack", "policy"]);

  step("9", "the offline render matches what the real run created");
  await compareRender(ctx, s);

  step("8", "pulumi destroy: refused while the backend uses the pooler; after the rollback, the pooler goes");
  const refused = await p.run(["destroy", "--yes", "--skip-preview"]);
  assert.notEqual(refused.code, 0, "destroy must be refused while backend.route is pgbouncer");
  assert.match(refused.output, /protect/i, `destroy names the protection:\n${tail(refused.output)}`);
  assert.deepEqual(await snapshot(), steady, "a refused destroy deletes nothing");
  await p.configSet("backend.route", "direct");
  await p.ok(["up", "--yes", "--skip-preview", "--policy-pack", "policy"]);
  await p.ok(["destroy", "--yes", "--skip-preview"]);
  for (const kind of POOLER_KINDS) {
    const left = (await list(k, kind, ns)).filter((o) => o.metadata.name !== s.backend.deploymentName);
    assert.deepEqual(
      left.map((o) => o.metadata.name),
      [],
      `no ${kind} of the pooler after destroy`,
    );
  }
  assert.deepEqual(
    (await list(k, "configmaps,secrets", ns, POOLER_SELECTOR)).map((o) => o.metadata.name),
    [],
  );
  const data = await backendConfig();
  assert.equal(data[s.backend.hostKey], direct.host, "after destroy the backend still points at PostgreSQL");
  assert.equal(data[s.backend.portKey], String(direct.port));
  assert.equal(data.LOG_LEVEL, "info", "the backend team's own keys are untouched");
  await expectAvailable(ctx, bns, s.backend.deploymentName, 1);

  // Why retainOnDelete: what the provider does to delete a Patch (4.25.0 `ssa.Relinquish`: an apply of the
  // bare identity under the patch's field manager), done by hand on the real API server. The keys the
  // pooler took over (forceConflicts) have no other manager left, so the API server drops them.
  const identity = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: s.backend.configMapName, namespace: bns },
  };
  await k(["apply", "--server-side", `--field-manager=${FIELD_MANAGER}`, "-f", "-"], {
    input: JSON.stringify(identity),
  });
  const relinquished = await backendConfig();
  assert.ok(!(s.backend.hostKey in relinquished), `a released patch removes ${s.backend.hostKey} altogether`);
  assert.ok(!(s.backend.portKey in relinquished), `a released patch removes ${s.backend.portKey} altogether`);
  assert.equal(relinquished.LOG_LEVEL, "info");
  log(
    `  a patch delete without retainOnDelete would leave ${Object.keys(relinquished).sort().join(", ")} only`,
  );
  await applyBackend(k, s);
  assert.equal(
    (await backendConfig())[s.backend.hostKey],
    direct.host,
    "the backend team's apply restores it",
  );
}

/** Step 2, on the cluster. */
async function expectPoolerServing(ctx: ScenarioContext, s: StackSettings): Promise<void> {
  const k = ctx.world.kubectl;
  const ns = s.namespace;
  await expectAvailable(ctx, ns, DEPLOYMENT_NAME, s.workload.replicas);
  const pods = (await list(k, "pods", ns, POOLER_SELECTOR)).filter((o) => !o.metadata.deletionTimestamp);
  const running = pods.filter((o) => (o.status as { phase?: string }).phase === "Running");
  assert.ok(running.length >= s.workload.replicas, `${s.workload.replicas} pooler pods running`);
  const nsObj = await getJson(k, ["namespace", ns]);
  assert.equal(nsObj.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
  // The profile is enforced: a pod that breaks it is refused, so the running pods passed it.
  const rootPod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "e2e-psa-probe", namespace: ns },
    spec: {
      // No securityContext: root allowed, privilege escalation, every capability (baseline, not restricted).
      containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }],
    },
  };
  const probe = await ctx.world.kubectlRaw(["apply", "--dry-run=server", "-f", "-"], {
    input: JSON.stringify(rootPod),
  });
  assert.notEqual(probe.code, 0, "a pod that breaks restricted must be refused");
  assert.match(probe.stderr, /violates PodSecurity "restricted/, probe.stderr);

  const pdbs = await list(k, "poddisruptionbudgets.policy", ns, POOLER_SELECTOR);
  assert.equal(pdbs.length, 1, "one PodDisruptionBudget");
  await waitFor("the PDB to count the pods", async () => {
    const pdb = await getJson(k, ["poddisruptionbudgets.policy", pdbs[0].metadata.name, "-n", ns]);
    return (pdb.status as { expectedPods?: number }).expectedPods === s.workload.replicas ? true : undefined;
  });
  assert.equal(
    (await list(k, "networkpolicies.networking.k8s.io", ns, POOLER_SELECTOR)).length,
    1,
    "one NetworkPolicy",
  );

  await waitFor("the Service's EndpointSlices to list every pod", async () => {
    const slices = await list(
      k,
      "endpointslices.discovery.k8s.io",
      ns,
      `kubernetes.io/service-name=${SERVICE_NAME}`,
    );
    const ready = slices.flatMap((x) =>
      ((x.endpoints ?? []) as { conditions?: { ready?: boolean } }[]).filter((e) => e.conditions?.ready),
    );
    const ports = slices.flatMap((x) => ((x.ports ?? []) as { port: number }[]).map((pp) => pp.port));
    return ready.length === s.workload.replicas &&
      ports.includes(s.workload.port) &&
      ports.includes(s.exporter.port)
      ? true
      : undefined;
  });

  if (s.monitoring.mode === "prometheus-operator") {
    assert.equal((await list(k, "podmonitors.monitoring.coreos.com", ns)).length, 1, "one PodMonitor");
    const rules = await list(k, "prometheusrules.monitoring.coreos.com", ns);
    assert.equal(rules.length, 1, "one PrometheusRule, accepted by the CRD's schema");
    // The schema is live: the same rule with a duration it cannot parse is refused.
    const bad = JSON.parse(JSON.stringify(rules[0])) as KubeObject & {
      spec: { groups: { rules: { for?: string }[] }[] };
    };
    bad.spec.groups[0].rules[0].for = "five minutes";
    const bm = bad.metadata as {
      name: string;
      resourceVersion?: string;
      uid?: string;
      managedFields?: unknown;
    };
    delete bm.resourceVersion;
    delete bm.uid;
    delete bm.managedFields;
    const r = await ctx.world.kubectlRaw(
      [
        "apply",
        "--dry-run=server",
        "--server-side",
        "--field-manager=clipper-e2e-probe",
        "--force-conflicts",
        "-f",
        "-",
      ],
      {
        input: JSON.stringify(bad),
      },
    );
    assert.notEqual(r.code, 0, "the PrometheusRule CRD refuses a malformed duration");
  }
}

/** Who owns what in the backend's ConfigMap: the pooler's two keys, the rest the backend team's. */
async function expectOwnership(ctx: ScenarioContext, s: StackSettings): Promise<void> {
  const cm = await getJson(ctx.world.kubectl, [
    "configmap",
    s.backend.configMapName,
    "-n",
    backendNamespace(s),
    "--show-managed-fields",
  ]);
  const owned = (manager: string) =>
    (cm.metadata.managedFields ?? [])
      .filter((m) => m.manager === manager)
      .flatMap((m) => Object.keys((m.fieldsV1 as Record<string, Record<string, unknown>>)["f:data"] ?? {}))
      .map((f) => f.replace(/^f:/, ""))
      .sort();
  assert.deepEqual(owned(FIELD_MANAGER), [s.backend.hostKey, s.backend.portKey].sort());
  assert.ok(owned(BACKEND_FIELD_MANAGER).includes("LOG_LEVEL"), "the backend team keeps its own keys");
  assert.ok(!owned(BACKEND_FIELD_MANAGER).includes(s.backend.hostKey), "the pooler took DB_HOST over");
}

async function expectAvailable(
  ctx: ScenarioContext,
  ns: string,
  name: string,
  replicas: number,
): Promise<void> {
  await waitFor(`deployment/${name} Available with ${replicas} replicas`, async () => {
    const d = await getJson<KubeObject & { spec: { replicas: number }; status: Record<string, unknown> }>(
      ctx.world.kubectl,
      ["deployment", name, "-n", ns],
    );
    const st = d.status as {
      updatedReplicas?: number;
      availableReplicas?: number;
      replicas?: number;
      observedGeneration?: number;
      conditions?: { type: string; status: string }[];
    };
    const available = (st.conditions ?? []).some((c) => c.type === "Available" && c.status === "True");
    return d.spec.replicas === replicas &&
      st.observedGeneration === d.metadata.generation &&
      st.updatedReplicas === replicas &&
      st.availableReplicas === replicas &&
      available
      ? true
      : undefined;
  });
}

function revision(o: KubeObject): number {
  return Number(o.metadata.annotations?.[RUN_ANNOTATION] ?? 0);
}

/** The smallest per-process server cap that breaks the stack's pool budget (derived, never hard-coded). */
export function impossibleServerCap(s: StackSettings): number {
  const pods = s.workload.replicas + ROLLING_SURGE;
  const available = s.database.maxConnections - s.database.reservedConnections;
  return Math.floor(available / (pods * s.workload.processesPerPod)) + 1;
}

/** A runbook line, run by bash as a person would, in the project folder. */
function sh(
  command: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; output: string }> {
  return new Promise((resolve) =>
    execFile("bash", ["-c", command], { cwd: PROJECT_DIR, env, timeout: 180_000 }, (err, stdout, stderr) =>
      resolve({
        code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
        stdout,
        output: stdout + stderr,
      }),
    ),
  );
}

function tail(text: string): string {
  return text.split("\n").slice(-30).join("\n");
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
