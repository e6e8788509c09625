/**
 * The pack as `pulumi preview --policy-pack policy` runs it: started through @pulumi/pulumi's own
 * run-policy-pack entry (ts-node, type-checked, from the policy directory), then asked over its gRPC analyzer
 * interface, with the resources the offline engine records for each stack. This is the CLI's side of the
 * conversation, without the CLI (not installed here).
 */
import * as assert from "assert";
import { type ChildProcess, spawn } from "child_process";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as analyzerGrpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzerPb from "@pulumi/pulumi/proto/analyzer_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { scramVerifier } from "../../components/credentials";
import { selectorLabels, strandingSpreadConstraints } from "../../components/pgbouncer";
import { PROJECT_DIR } from "../../stacks/stack-file";
import { type RecordedResource, runOffline } from "../../testing/engine";
import { offlineVault } from "../../testing/offline-vault";
import { loadStackSettings } from "../../stacks/settings";

const PACK_DIR = path.join(PROJECT_DIR, "policy");
const RUNNER = require.resolve("@pulumi/pulumi/cmd/run-policy-pack/index.js");

function analyzerResource(stack: string, r: RecordedResource): analyzerPb.AnalyzerResource {
  const a = new analyzerPb.AnalyzerResource();
  a.setType(r.type);
  a.setName(r.name);
  a.setUrn(`urn:pulumi:${stack}::clipper-pgbouncer::${r.type}::${r.name}`);
  a.setProperties(Struct.fromJavaScript(JSON.parse(JSON.stringify(r.inputs)) as Record<string, never>));
  a.setOptions(new analyzerPb.AnalyzerResourceOptions());
  return a;
}

interface Diagnostic {
  policy: string;
  message: string;
  level: analyzerPb.EnforcementLevel;
}

describe("policy pack through the CrossGuard analyzer protocol", function () {
  this.timeout(180_000);
  let pack: ChildProcess | undefined;
  let client: analyzerGrpc.AnalyzerClient;

  before(async () => {
    pack = spawn(process.execPath, [RUNNER, "127.0.0.1:1", "."], {
      cwd: PACK_DIR,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    pack.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    // The pack prints the port it listens on (on 127.0.0.1, chosen by the OS), as the CLI expects.
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      pack?.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /^(\d+)\s*$/m.exec(out);
        if (m) resolve(Number(m[1]));
      });
      pack?.on("exit", (code) => reject(new Error(`policy pack exited (${code}): ${stderr}`)));
    });
    client = new analyzerGrpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  after(() => {
    client?.close();
    if (pack?.pid !== undefined && pack.exitCode === null) pack.kill("SIGTERM");
  });

  /** The findings that stop a deployment (the tag-only advisory is expected on prod as shipped). */
  function mandatory(found: Diagnostic[]): Diagnostic[] {
    return found.filter((d) => d.level !== analyzerPb.EnforcementLevel.ADVISORY);
  }

  async function analyze(stack: string, change?: (rs: RecordedResource[]) => void): Promise<Diagnostic[]> {
    const run = await runOffline({ stack, vault: offlineVault(stack) });
    const resources = run.resources.map((r) => ({ ...r, inputs: structuredClone(r.inputs) }));
    change?.(resources);
    const found: Diagnostic[] = [];
    const collect = (res: analyzerPb.AnalyzeResponse) =>
      found.push(
        ...res.getDiagnosticsList().map((d) => ({
          policy: d.getPolicyname(),
          message: d.getMessage(),
          level: d.getEnforcementlevel(),
        })),
      );
    const stackReq = new analyzerPb.AnalyzeStackRequest();
    stackReq.setResourcesList(resources.map((r) => analyzerResource(stack, r)));
    collect(
      await new Promise<analyzerPb.AnalyzeResponse>((ok, ko) =>
        client.analyzeStack(stackReq, (e, res) => (e ? ko(e) : ok(res))),
      ),
    );
    for (const r of resources) {
      const a = analyzerResource(stack, r);
      const req = new analyzerPb.AnalyzeRequest();
      req.setType(a.getType());
      req.setName(a.getName());
      req.setUrn(a.getUrn());
      req.setProperties(a.getProperties());
      req.setOptions(a.getOptions());
      collect(
        await new Promise<analyzerPb.AnalyzeResponse>((ok, ko) =>
          client.analyze(req, (e, res) => (e ? ko(e) : ok(res))),
        ),
      );
    }
    return found;
  }

  it("serves the eight policies", async () => {
    const info = await new Promise<analyzerPb.AnalyzerInfo>((ok, ko) =>
      client.getAnalyzerInfo(new Empty(), (e, res) => (e ? ko(e) : ok(res))),
    );
    assert.strictEqual(info.getName(), "clipper-pgbouncer");
    assert.deepStrictEqual(
      info
        .getPoliciesList()
        .map((p) => p.getName())
        .sort(),
      [
        "no-plaintext-secrets",
        "pool-budget-fits-postgres",
        "prod-images-by-digest",
        "prod-replicas-and-pdb",
        "prod-server-login-without-client-proof",
        "prod-spread-cannot-strand",
        "prod-tls-both-legs",
        "restricted-pod-security",
      ],
    );
  });

  it("finds nothing to report in staging", async () => {
    assert.deepStrictEqual(await analyze("staging"), []);
  });

  it("finds only the advisory on prod's tag-pinned images (no digest is shipped), and a mandatory TLS floor", async () => {
    const found = await analyze("prod");
    assert.deepStrictEqual(
      found.map((d) => [d.policy, d.level]),
      [
        ["prod-images-by-digest", analyzerPb.EnforcementLevel.ADVISORY],
        ["prod-images-by-digest", analyzerPb.EnforcementLevel.ADVISORY],
      ],
    );
    assert.match(found[0].message, /runs ghcr\.io\/cloudnative-pg\/pgbouncer:1\.25\.2, pinned by tag only/);
    const weak = await analyze("prod", (rs) => {
      const cm = rs.find((r) => r.type === "kubernetes:core/v1:ConfigMap" && r.name === "pgbouncer-config")!;
      const data = (cm.inputs as { data: Record<string, string> }).data;
      data["pgbouncer.ini"] = data["pgbouncer.ini"].replace(
        /^server_tls_sslmode = .*$/m,
        "server_tls_sslmode = prefer",
      );
    });
    const tls = weak.filter((d) => d.policy === "prod-tls-both-legs");
    assert.strictEqual(tls.length, 1, JSON.stringify(weak));
    assert.strictEqual(tls[0].level, analyzerPb.EnforcementLevel.MANDATORY);
    assert.match(tls[0].message, /server_tls_sslmode is prefer; production needs verify-ca or verify-full/);
  });

  it("reports a prod StatefulSet with one replica and a plaintext password env var", async () => {
    const found = await analyze("prod", (rs) => {
      const d = rs.find((r) => r.type === "kubernetes:apps/v1:StatefulSet")!;
      const spec = (
        d.inputs as { spec: { replicas: number; template: { spec: { containers: { env?: unknown[] }[] } } } }
      ).spec;
      spec.replicas = 1;
      spec.template.spec.containers[0].env = [{ name: "DB_PASSWORD", value: "hunter2" }];
    });
    const policies = new Set(found.map((d) => d.policy));
    assert.ok(policies.has("prod-replicas-and-pdb"), JSON.stringify(found));
    assert.ok(policies.has("no-plaintext-secrets"), JSON.stringify(found));
  });

  it("reports a prod StatefulSet whose spread counts cordoned nodes (the spread that stranded a replica)", async () => {
    const workload = loadStackSettings("prod").workload;
    const found = await analyze("prod", (rs) => {
      const d = rs.find((r) => r.type === "kubernetes:apps/v1:StatefulSet")!;
      const pod = (d.inputs as { spec: { template: { spec: { topologySpreadConstraints: unknown } } } }).spec
        .template.spec;
      pod.topologySpreadConstraints = strandingSpreadConstraints(workload, selectorLabels("pgbouncer"));
    });
    assert.deepStrictEqual(
      mandatory(found).map((d) => d.policy),
      ["prod-spread-cannot-strand"],
      JSON.stringify(found),
    );
    assert.match(found[0].message, /nodeTaintsPolicy unset \(Ignore\)/);
  });

  it("reads the auth file through the secret the CLI sends, and reports the application user's verifier in prod", async () => {
    const found = await analyze("prod", (rs) => {
      const secret = rs.find((r) => r.type === "kubernetes:core/v1:Secret")!;
      const data = (secret.inputs as { stringData: { value: Record<string, string> } }).stringData.value;
      data["userlist.txt"] = data["userlist.txt"].replace(
        /^"clipper_app" ".*"$/m,
        `"clipper_app" "${scramVerifier("clipper_app", "pw")}"`,
      );
    });
    assert.deepStrictEqual(
      mandatory(found).map((d) => d.policy),
      ["prod-server-login-without-client-proof"],
      JSON.stringify(found),
    );
    assert.match(found[0].message, /SCRAM verifier for clipper_app/);
  });
});
