import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  SERVICE_NAME,
  socketConnectionString,
  preStopCommand,
  tlsReloadCommand,
} from "../../components/pgbouncer";
import { PgBouncer, type PgBouncerArgs } from "../../components/pgbouncer/resources";
import { isSecretMarker } from "../../testing/manifests";
import { one, promiseOf, registered, resetMocks, settled } from "../support/mocks";
import { loadStackSettings } from "../../stacks/settings";

const prod = loadStackSettings("prod");

function args(overrides: Partial<PgBouncerArgs> = {}): PgBouncerArgs {
  return {
    namespace: prod.namespace,
    workload: prod.workload,
    pool: prod.pool,
    database: prod.database,
    exporter: prod.exporter,
    network: prod.network,
    tls: prod.tls,
    credentials: {
      authFile: pulumi.secret('"clipper" "SCRAM-SHA-256$4096:c2FsdA==$a:b"\n'),
      exporterConnectionString: pulumi.secret("postgres://pgbouncer_exporter:pw@127.0.0.1:6432/pgbouncer"),
      iniAuth: { type: "scram-sha-256" },
      appLogin: { unavailable: "not needed by the component" },
    },
    ...overrides,
  };
}

async function build(a: PgBouncerArgs = args()): Promise<PgBouncer> {
  registered.length = 0;
  const p = new PgBouncer("pgbouncer", a);
  await promiseOf(p.host);
  await settled();
  return p;
}

function deploymentSpec(): any {
  return one("kubernetes:apps/v1:Deployment").inputs.spec;
}

function container(name: string): any {
  return deploymentSpec().template.spec.containers.find((c: any) => c.name === name);
}

describe("PgBouncer component (prod settings)", () => {
  before(() => resetMocks());

  describe("GIVEN the prod stack WHEN the component is built", () => {
    let pooler: PgBouncer;
    before(async () => {
      pooler = await build();
    });

    it("THEN its host and port are the Service's DNS name and the client port", async () => {
      assert.strictEqual(await promiseOf(pooler.host), "pgbouncer.clipper.svc.cluster.local");
      assert.strictEqual(await promiseOf(pooler.port), 6432);
    });

    it("THEN the Deployment runs 2 replicas, rolling with no unavailable pod", () => {
      const spec = deploymentSpec();
      assert.strictEqual(spec.replicas, 2);
      assert.deepStrictEqual(spec.strategy, {
        type: "RollingUpdate",
        rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
      });
    });

    it("THEN PgBouncer runs the pinned secure release with the spec's resources", () => {
      const c = container("pgbouncer");
      assert.strictEqual(c.image, "ghcr.io/cloudnative-pg/pgbouncer:1.25.2");
      assert.deepStrictEqual(c.resources, {
        requests: { cpu: "100m", memory: "64Mi" },
        limits: { cpu: "500m", memory: "256Mi" },
      });
      // TLS files are mounted, so PgBouncer runs under the loop that reloads it when they are renewed.
      assert.deepStrictEqual(
        c.command,
        tlsReloadCommand("/etc/pgbouncer/pgbouncer.ini", "/etc/pgbouncer/tls", prod.tls.reloadCheckSeconds),
      );
    });

    it("THEN the exporter sidecar is v0.12.1 on 9127 and reads its connection string from the Secret", () => {
      const c = container("exporter");
      assert.strictEqual(c.image, "prometheuscommunity/pgbouncer-exporter:v0.12.1");
      assert.deepStrictEqual(c.ports, [{ name: "metrics", containerPort: 9127, protocol: "TCP" }]);
      const env = c.env.find((e: any) => e.name === "PGBOUNCER_EXPORTER_CONNECTION_STRING");
      assert.strictEqual(env.value, undefined);
      assert.strictEqual(env.valueFrom.secretKeyRef.key, "exporter-connection-string");
      assert.match(env.valueFrom.secretKeyRef.name, /^pgbouncer-auth-/);
      assert.strictEqual(c.readinessProbe, undefined, "a failing exporter must not unready the pooler");
    });

    it("THEN every container meets the restricted Pod Security Standard", () => {
      const pod = deploymentSpec().template.spec;
      assert.strictEqual(pod.automountServiceAccountToken, false);
      assert.strictEqual(pod.securityContext.runAsNonRoot, true);
      assert.deepStrictEqual(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
      for (const c of pod.containers) {
        assert.strictEqual(c.securityContext.runAsNonRoot, true, c.name);
        assert.strictEqual(c.securityContext.allowPrivilegeEscalation, false, c.name);
        assert.strictEqual(c.securityContext.readOnlyRootFilesystem, true, c.name);
        assert.deepStrictEqual(c.securityContext.capabilities, { drop: ["ALL"] }, c.name);
        assert.deepStrictEqual(c.securityContext.seccompProfile, { type: "RuntimeDefault" }, c.name);
        for (const m of c.volumeMounts ?? []) {
          // The one writable mount: the process's own unix socket directory, a 1 MiB in-memory emptyDir.
          const own = c.name === "pgbouncer" && m.mountPath === "/var/run/pgbouncer/1";
          assert.strictEqual(m.readOnly, own ? undefined : true, `${c.name} ${m.mountPath}`);
        }
      }
      assert.deepStrictEqual(
        pod.volumes.filter((v: any) => v.emptyDir),
        [{ name: "run-1", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } }],
      );
    });

    it("THEN PgBouncer drains on SIGINT after the preStop delay, within the grace period", () => {
      const c = container("pgbouncer");
      const cmd: string[] = c.lifecycle.preStop.exec.command;
      assert.match(cmd[2], /^sleep 10; kill -INT 1;/);
      assert.strictEqual(deploymentSpec().template.spec.terminationGracePeriodSeconds, 120);
    });

    it("THEN readiness and liveness probe the client port", () => {
      const c = container("pgbouncer");
      assert.deepStrictEqual(c.readinessProbe.tcpSocket, { port: "pgbouncer" });
      assert.deepStrictEqual(c.livenessProbe.tcpSocket, { port: "pgbouncer" });
    });

    it("THEN replicas spread softly over the nodes they can use, counting only their own revision", () => {
      assert.deepStrictEqual(deploymentSpec().template.spec.topologySpreadConstraints, [
        {
          maxSkew: 1,
          topologyKey: "kubernetes.io/hostname",
          whenUnsatisfiable: "ScheduleAnyway",
          nodeTaintsPolicy: "Honor",
          nodeAffinityPolicy: "Honor",
          labelSelector: { matchLabels: deploymentSpec().selector.matchLabels },
          matchLabelKeys: ["pod-template-hash"],
        },
      ]);
    });

    it("THEN the ConfigMap carries the rendered ini and the Deployment mounts it by its generated name", () => {
      const cm = one("kubernetes:core/v1:ConfigMap", undefined, "pgbouncer-config").inputs as any;
      assert.strictEqual(cm.metadata.name, undefined, "auto-named, so a change rolls the pods");
      assert.strictEqual(cm.data["pgbouncer.ini"], pooler.ini);
      assert.match(pooler.ini, /^max_db_connections = 50$/m);
      const vol = deploymentSpec().template.spec.volumes.find((v: any) => v.name === "config");
      assert.match(vol.configMap.name, /^pgbouncer-config-[0-9a-f]{8}$/);
    });

    it("THEN the Secret's data is a Pulumi secret and is mounted read-only", () => {
      const secret = one("kubernetes:core/v1:Secret", undefined, "pgbouncer-auth").inputs as any;
      assert.ok(isSecretMarker(secret.stringData), "stringData must be secret");
      const vol = deploymentSpec().template.spec.volumes.find((v: any) => v.name === "auth");
      assert.strictEqual(vol.secret.defaultMode, 0o440);
    });

    it("THEN the Service is named pgbouncer and exposes 6432 and 9127", () => {
      const svc = one("kubernetes:core/v1:Service").inputs as any;
      assert.strictEqual(svc.metadata.name, SERVICE_NAME);
      assert.strictEqual(svc.spec.type, "ClusterIP");
      assert.deepStrictEqual(
        svc.spec.ports.map((p: any) => [p.name, p.port]),
        [
          ["pgbouncer", 6432],
          ["metrics", 9127],
        ],
      );
    });

    it("THEN a PodDisruptionBudget keeps all but one pod through voluntary disruptions", () => {
      const pdb = one("kubernetes:policy/v1:PodDisruptionBudget").inputs as any;
      assert.strictEqual(pdb.spec.maxUnavailable, 1);
      assert.deepStrictEqual(pdb.spec.selector.matchLabels, deploymentSpec().selector.matchLabels);
    });

    it("THEN the NetworkPolicy admits 6432 only from the backend and 9127 only from Prometheus", () => {
      const np = one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs as any;
      assert.deepStrictEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
      assert.deepStrictEqual(np.spec.ingress, [
        {
          from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "clipper-backend" } } }],
          ports: [{ protocol: "TCP", port: 6432 }],
        },
        {
          from: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
              podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
            },
          ],
          ports: [{ protocol: "TCP", port: 9127 }],
        },
      ]);
    });
  });

  describe("GIVEN a config change", () => {
    it("THEN the ConfigMap gets a new name and the Deployment's pod template changes, rolling the pods", async () => {
      await build();
      const before = deploymentSpec().template.spec.volumes.find((v: any) => v.name === "config").configMap
        .name;
      await build(args({ pool: { ...prod.pool, defaultPoolSize: 40 } }));
      const after = deploymentSpec().template.spec.volumes.find((v: any) => v.name === "config").configMap
        .name;
      assert.notStrictEqual(after, before);
    });
  });

  describe("GIVEN a stack that must never co-locate the replicas, on a cluster with zones", () => {
    it("THEN the node spread is hard, still over usable nodes only, and zones are spread softly", async () => {
      await build(
        args({ workload: { ...prod.workload, spreadWhenUnsatisfiable: "DoNotSchedule", zoneSpread: true } }),
      );
      const spread = deploymentSpec().template.spec.topologySpreadConstraints;
      assert.deepStrictEqual(
        spread.map((c: any) => [
          c.topologyKey,
          c.whenUnsatisfiable,
          c.maxSkew,
          c.nodeTaintsPolicy,
          c.nodeAffinityPolicy,
          c.matchLabelKeys,
        ]),
        [
          ["kubernetes.io/hostname", "DoNotSchedule", 1, "Honor", "Honor", ["pod-template-hash"]],
          ["topology.kubernetes.io/zone", "ScheduleAnyway", 1, "Honor", "Honor", ["pod-template-hash"]],
        ],
      );
      for (const c of spread)
        assert.deepStrictEqual(c.labelSelector.matchLabels, deploymentSpec().selector.matchLabels);
    });
  });

  describe("GIVEN a target release that lacks a parameter", () => {
    it("THEN the component refuses to render and registers no child", async () => {
      registered.length = 0;
      assert.throws(
        () => new PgBouncer("pgbouncer", args({ workload: { ...prod.workload, version: "1.18.0" } })),
        /PgBouncer 1\.18\.0 does not accept "max_prepared_statements"/,
      );
      await settled();
      assert.deepStrictEqual(
        registered.filter((r) => r.type.startsWith("kubernetes:")).map((r) => r.type),
        [],
      );
    });
  });
});

describe("PgBouncer component with several processes per pod", () => {
  const two = { ...prod.workload, processesPerPod: 2 };
  let pooler: PgBouncer;
  before(async () => {
    await resetMocks();
    pooler = await build(args({ workload: two }));
  });

  it("runs one PgBouncer container per process, each on its own ini from the ConfigMap", () => {
    const pod = deploymentSpec().template.spec;
    assert.deepStrictEqual(
      pod.containers.map((c: any) => [c.name, c.command]),
      [
        ["pgbouncer-1", tlsReloadCommand("/etc/pgbouncer/pgbouncer-1.ini", "/etc/pgbouncer/tls", 10)],
        ["pgbouncer-2", tlsReloadCommand("/etc/pgbouncer/pgbouncer-2.ini", "/etc/pgbouncer/tls", 10)],
        ["exporter-1", undefined],
        ["exporter-2", undefined],
      ],
    );
    const cm = one("kubernetes:core/v1:ConfigMap", undefined, "pgbouncer-config").inputs as any;
    assert.deepStrictEqual(Object.keys(cm.data), ["pgbouncer-1.ini", "pgbouncer-2.ini"]);
    assert.deepStrictEqual(Object.values(cm.data), pooler.inis);
  });

  it("shares the port with so_reuseport and peers the processes over their unix sockets", () => {
    for (const [i, ini] of pooler.inis.entries()) {
      assert.match(ini, /^so_reuseport = 1$/m);
      assert.match(ini, new RegExp(`^peer_id = ${i + 1}$`, "m"));
      assert.match(ini, new RegExp(`^unix_socket_dir = /var/run/pgbouncer/${i + 1}$`, "m"));
      assert.match(
        ini,
        /^\[peers\]\n1 = host=\/var\/run\/pgbouncer\/1 port=6432\n2 = host=\/var\/run\/pgbouncer\/2 port=6432$/m,
      );
      assert.match(ini, /^max_db_connections = 50$/m, "pool limits are per process");
    }
  });

  it("declares the client port once, and probes each process through its own socket", () => {
    const [p1, p2] = deploymentSpec().template.spec.containers;
    assert.deepStrictEqual(p1.ports, [{ name: "pgbouncer", containerPort: 6432, protocol: "TCP" }]);
    assert.strictEqual(p2.ports, undefined);
    assert.deepStrictEqual(p2.readinessProbe.exec.command, [
      "test",
      "-S",
      "/var/run/pgbouncer/2/.s.PGSQL.6432",
    ]);
  });

  it("gives each process its own exporter, port and connection string key", () => {
    const pod = deploymentSpec().template.spec;
    const exporters = pod.containers.filter((c: any) => c.name.startsWith("exporter"));
    assert.deepStrictEqual(
      exporters.map((c: any) => [
        c.ports[0].name,
        c.ports[0].containerPort,
        c.env[0].valueFrom.secretKeyRef.key,
      ]),
      [
        ["metrics", 9127, "exporter-connection-string"],
        ["metrics-2", 9128, "exporter-connection-string-2"],
      ],
    );
    assert.deepStrictEqual(pooler.metricsPortNames, ["metrics", "metrics-2"]);
  });

  it("gives each process its own socket directory as an in-memory volume, the only writable ones", () => {
    const pod = deploymentSpec().template.spec;
    assert.deepStrictEqual(
      pod.volumes.filter((v: any) => v.emptyDir),
      [
        { name: "run-1", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
        { name: "run-2", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
      ],
    );
    const mounts = (name: string) =>
      pod.containers
        .find((c: any) => c.name === name)
        .volumeMounts.filter((m: any) => m.name.startsWith("run"))
        .map((m: any) => [m.mountPath, m.readOnly === true]);
    // PgBouncer does not create its unix_socket_dir: each must be a mount point of its own.
    assert.deepStrictEqual(mounts("pgbouncer-1"), [
      ["/var/run/pgbouncer/1", false],
      ["/var/run/pgbouncer/2", true],
    ]);
    assert.deepStrictEqual(mounts("pgbouncer-2"), [
      ["/var/run/pgbouncer/1", true],
      ["/var/run/pgbouncer/2", false],
    ]);
    assert.deepStrictEqual(mounts("exporter-2"), [["/var/run/pgbouncer/2", true]]);
  });

  it("admits Prometheus to every exporter port", () => {
    const np = one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs as any;
    assert.deepStrictEqual(np.spec.ingress[1].ports, [{ protocol: "TCP", port: 9127, endPort: 9128 }]);
  });
});

describe("socketConnectionString", () => {
  it("points the exporter at one process's unix socket, keeping the secret's user and password", () => {
    assert.strictEqual(
      socketConnectionString(
        "postgres://pgbouncer_exporter:p%40ss%2Fw@127.0.0.1:6432/pgbouncer?sslmode=disable",
        "/var/run/pgbouncer/2",
      ),
      "postgres://pgbouncer_exporter:p%40ss%2Fw@/pgbouncer?sslmode=disable&host=%2Fvar%2Frun%2Fpgbouncer%2F2&port=6432",
    );
  });
});

describe("the preStop hook's shell script", () => {
  it("passes shellcheck as the POSIX sh the image runs it with", () => {
    const [shell, flag, script] = preStopCommand(prod.workload.preStopDelaySeconds);
    assert.deepStrictEqual([shell, flag], ["/bin/sh", "-c"]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prestop-"));
    try {
      const file = path.join(dir, "prestop.sh");
      fs.writeFileSync(file, `#!/bin/sh\n${script}\n`);
      const r = spawnSync("shellcheck", ["--shell=sh", file], { encoding: "utf8" });
      assert.strictEqual(r.error, undefined, "shellcheck is missing: run tools/install-test-deps.sh");
      assert.strictEqual(r.status, 0, r.stdout);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("really drains: SIGINT to PID 1 after the delay, then waits while it lives", () => {
    const script = preStopCommand(7)[2];
    assert.strictEqual(script, "sleep 7; kill -INT 1; while kill -0 1 2>/dev/null; do sleep 1; done");
  });
});
