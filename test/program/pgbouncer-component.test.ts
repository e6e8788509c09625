import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  CANARY_SERVICE_NAME,
  NO_RELOAD_ANNOTATION,
  PEERS_SERVICE_NAME,
  SERVICE_NAME,
  noReloadHash,
  podScriptCommand,
  preStopCommand,
  socketConnectionString,
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
      serverLoginChecks: 1,
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

function workloadSpec(): any {
  return one("kubernetes:apps/v1:StatefulSet").inputs.spec;
}

function container(name: string): any {
  return workloadSpec().template.spec.containers.find((c: any) => c.name === name);
}

/** A container's environment as a map (values, or the downward API field they come from). */
function envOf(c: any): Record<string, string> {
  return Object.fromEntries(
    c.env.map((e: any) => [e.name, e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath}`]),
  );
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

    it("THEN the StatefulSet runs 2 replicas named through the peers Service, one replaced at a time", () => {
      const sts = one("kubernetes:apps/v1:StatefulSet").inputs as any;
      assert.strictEqual(sts.metadata.name, "pgbouncer");
      const spec = workloadSpec();
      assert.strictEqual(spec.replicas, 2);
      assert.strictEqual(spec.serviceName, PEERS_SERVICE_NAME);
      assert.strictEqual(spec.podManagementPolicy, "Parallel");
      // One at a time is the StatefulSet's own rolling update; maxUnavailable is gated (off in 1.35).
      assert.deepStrictEqual(spec.updateStrategy, { type: "RollingUpdate" });
    });

    it("THEN the peers Service is headless and publishes every pod, ready or not; the canary's only pod 0, ready", () => {
      const peers = one("kubernetes:core/v1:Service", undefined, "pgbouncer-peers").inputs as any;
      assert.strictEqual(peers.metadata.name, PEERS_SERVICE_NAME);
      assert.strictEqual(peers.spec.clusterIP, "None");
      assert.strictEqual(peers.spec.publishNotReadyAddresses, true);
      assert.deepStrictEqual(peers.spec.selector, workloadSpec().selector.matchLabels);
      const canary = one("kubernetes:core/v1:Service", undefined, "pgbouncer-canary").inputs as any;
      assert.strictEqual(canary.metadata.name, CANARY_SERVICE_NAME);
      assert.strictEqual(canary.spec.clusterIP, "None");
      assert.strictEqual(canary.spec.publishNotReadyAddresses, undefined);
      assert.deepStrictEqual(canary.spec.selector, {
        ...workloadSpec().selector.matchLabels,
        "statefulset.kubernetes.io/pod-name": "pgbouncer-0",
      });
    });

    it("THEN PgBouncer runs the pinned secure release with the spec's resources", () => {
      const c = container("pgbouncer");
      assert.strictEqual(c.image, "ghcr.io/cloudnative-pg/pgbouncer:1.25.2");
      assert.deepStrictEqual(c.resources, {
        requests: { cpu: "100m", memory: "64Mi" },
        limits: { cpu: "500m", memory: "256Mi" },
      });
      // PgBouncer runs under the pod's script, told its process, the mounts it watches and the canary.
      assert.deepStrictEqual(c.command, podScriptCommand());
      assert.deepStrictEqual(envOf(c), {
        PGBOUNCER_POD_NAME: "fieldRef:metadata.name",
        PGBOUNCER_PROCESS: "1",
        PGBOUNCER_PROCESSES: "1",
        PGBOUNCER_LISTEN_ADDR: "0.0.0.0",
        PGBOUNCER_PORT: "6432",
        PGBOUNCER_SOURCES: "/etc/pgbouncer/config /etc/pgbouncer/auth /etc/pgbouncer/tls",
        PGBOUNCER_CURRENT: "/var/run/pgbouncer/applied/current",
        PGBOUNCER_SOCKET_DIR: "/var/run/pgbouncer/1",
        PGBOUNCER_CHECK_SECONDS: String(prod.workload.reloadCheckSeconds),
        PGBOUNCER_CANARY: "pgbouncer-canary.clipper.svc.cluster.local",
        PGBOUNCER_CANARY_HOLD_SECONDS: String(prod.workload.canaryHoldSeconds),
        PGBOUNCER_FAILURE_SECONDS: String(prod.workload.serverLoginFailureSeconds),
        PGBOUNCER_DRAIN_SECONDS: String(prod.workload.drainSeconds),
        PGBOUNCER_CHECK_LOGINS: "1",
      });
    });

    it("THEN the exporter sidecar is v0.12.1 on 9127 and reads its connection string from the Secret", () => {
      const c = container("exporter");
      assert.strictEqual(c.image, "prometheuscommunity/pgbouncer-exporter:v0.12.1");
      assert.deepStrictEqual(c.ports, [{ name: "metrics", containerPort: 9127, protocol: "TCP" }]);
      const env = c.env.find((e: any) => e.name === "PGBOUNCER_EXPORTER_CONNECTION_STRING");
      assert.strictEqual(env.value, undefined);
      assert.strictEqual(env.valueFrom.secretKeyRef.key, "exporter-connection-string");
      assert.match(env.valueFrom.secretKeyRef.name, /^pgbouncer-exporter-/);
      assert.strictEqual(c.readinessProbe, undefined, "a failing exporter must not unready the pooler");
    });

    it("THEN every container meets the restricted Pod Security Standard", () => {
      const pod = workloadSpec().template.spec;
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
          // The writable mounts: the process's own unix socket directory and its script's validated copies,
          // in-memory emptyDirs.
          const own =
            c.name === "pgbouncer" &&
            ["/var/run/pgbouncer/1", "/var/run/pgbouncer/applied"].includes(m.mountPath);
          assert.strictEqual(m.readOnly, own ? undefined : true, `${c.name} ${m.mountPath}`);
        }
      }
      assert.deepStrictEqual(
        pod.volumes.filter((v: any) => v.emptyDir),
        [
          { name: "run-1", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
          { name: "applied-1", emptyDir: { medium: "Memory", sizeLimit: "4Mi" } },
        ],
      );
    });

    it("THEN the script drains PgBouncer on the preStop hook's INT after the delay, within the grace period", () => {
      const c = container("pgbouncer");
      const cmd: string[] = c.lifecycle.preStop.exec.command;
      assert.match(cmd[2], /^sleep 10; kill -INT 1;/);
      assert.strictEqual(workloadSpec().template.spec.terminationGracePeriodSeconds, 120);
    });

    it("THEN readiness reads the script's file, and liveness the process's own socket", () => {
      const c = container("pgbouncer");
      assert.deepStrictEqual(c.readinessProbe.exec.command, ["test", "-e", "/var/run/pgbouncer/1/ready"]);
      assert.deepStrictEqual(c.livenessProbe.exec.command, [
        "test",
        "-S",
        "/var/run/pgbouncer/1/.s.PGSQL.6432",
      ]);
    });

    it("THEN replicas spread softly over the nodes they can use, counting only their own revision", () => {
      assert.deepStrictEqual(workloadSpec().template.spec.topologySpreadConstraints, [
        {
          maxSkew: 1,
          topologyKey: "kubernetes.io/hostname",
          whenUnsatisfiable: "ScheduleAnyway",
          nodeTaintsPolicy: "Honor",
          nodeAffinityPolicy: "Honor",
          labelSelector: { matchLabels: workloadSpec().selector.matchLabels },
          matchLabelKeys: ["controller-revision-hash"],
        },
      ]);
    });

    it("THEN the ConfigMap pgbouncer-config carries the shared ini, mounted as a folder the kubelet updates", () => {
      const cm = one("kubernetes:core/v1:ConfigMap", undefined, "pgbouncer-config").inputs as any;
      assert.strictEqual(cm.metadata.name, "pgbouncer-config", "a stable name, updated in place");
      assert.strictEqual(cm.data["pgbouncer.ini"], pooler.ini);
      assert.match(pooler.ini, /^max_db_connections = 50$/m);
      const vol = workloadSpec().template.spec.volumes.find((v: any) => v.name === "config");
      assert.deepStrictEqual(vol.configMap, {
        name: "pgbouncer-config",
        items: [{ key: "pgbouncer.ini", path: "pgbouncer.ini" }],
      });
      const mount = container("pgbouncer").volumeMounts.find((m: any) => m.name === "config");
      assert.deepStrictEqual(mount, { name: "config", mountPath: "/etc/pgbouncer/config", readOnly: true });
      assert.strictEqual((mount as any).subPath, undefined, "the kubelet never updates a subPath mount");
    });

    it("THEN the ini is every process's: every peer of the fleet, no process's own lines, [pgbouncer] last", () => {
      assert.match(
        pooler.ini,
        /^\[peers\]\n1 = host=pgbouncer-0\.pgbouncer-peers\.clipper\.svc\.cluster\.local port=6432\n2 = host=pgbouncer-1\.pgbouncer-peers\.clipper\.svc\.cluster\.local port=6432\n/m,
      );
      assert.doesNotMatch(pooler.ini, /^(peer_id|unix_socket_dir|so_reuseport) =/m);
      const sections = pooler.ini.match(/^\[[a-z]+\]$/gm);
      assert.deepStrictEqual(sections, ["[databases]", "[peers]", "[pgbouncer]"]);
      assert.match(pooler.ini, /^auth_file = \/var\/run\/pgbouncer\/applied\/current\/userlist\.txt$/m);
    });

    it("THEN the auth Secret pgbouncer-auth holds only the auth file, as a Pulumi secret, mounted read-only", () => {
      const secret = one("kubernetes:core/v1:Secret", undefined, "pgbouncer-auth").inputs as any;
      assert.strictEqual(secret.metadata.name, "pgbouncer-auth", "a stable name, updated in place");
      assert.ok(isSecretMarker(secret.stringData), "stringData must be secret");
      assert.deepStrictEqual(Object.keys(secret.stringData.value), ["userlist.txt"]);
      const vol = workloadSpec().template.spec.volumes.find((v: any) => v.name === "auth");
      assert.strictEqual(vol.secret.secretName, "pgbouncer-auth");
      assert.strictEqual(vol.secret.defaultMode, 0o440);
    });

    it("THEN the exporters' Secret is immutable and auto-named: a change replaces it, and the pods roll", () => {
      const secret = one("kubernetes:core/v1:Secret", undefined, "pgbouncer-exporter").inputs as any;
      assert.strictEqual(secret.immutable, true);
      assert.strictEqual(secret.metadata.name, undefined);
      assert.ok(isSecretMarker(secret.stringData), "stringData must be secret");
    });

    it("THEN the pod template carries the hash of the ini's no-reload settings", () => {
      const annotations = workloadSpec().template.metadata.annotations;
      assert.strictEqual(annotations[NO_RELOAD_ANNOTATION], noReloadHash(pooler.ini));
    });

    it("THEN the Service is named pgbouncer and exposes 6432 and 9127", () => {
      const svc = one("kubernetes:core/v1:Service", undefined, "pgbouncer-service").inputs as any;
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
      assert.deepStrictEqual(pdb.spec.selector.matchLabels, workloadSpec().selector.matchLabels);
    });

    it("THEN the NetworkPolicy admits 6432 only from the backend and the pooler's peers, 9127 only from Prometheus", () => {
      const np = one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs as any;
      const self = workloadSpec().selector.matchLabels;
      assert.deepStrictEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
      assert.deepStrictEqual(np.spec.egress.at(-1), {
        to: [{ podSelector: { matchLabels: self } }],
        ports: [{ protocol: "TCP", port: 6432 }],
      });
      assert.deepStrictEqual(np.spec.ingress, [
        {
          from: [
            { podSelector: { matchLabels: { "app.kubernetes.io/name": "clipper-backend" } } },
            { podSelector: { matchLabels: self } },
          ],
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

  describe("GIVEN a change of a reloadable setting (a pool size, a timeout) or of the auth file", () => {
    it("THEN the ConfigMap and the Secret keep their names and the pod template does not change", async () => {
      await build();
      const before = workloadSpec().template;
      const cmBefore = (one("kubernetes:core/v1:ConfigMap", undefined, "pgbouncer-config").inputs as any)
        .data;
      await build(
        args({
          pool: { ...prod.pool, defaultPoolSize: 40, queryWaitTimeoutSeconds: 60 },
          credentials: { ...args().credentials, authFile: pulumi.secret('"clipper" "another-password"\n') },
        }),
      );
      const cm = one("kubernetes:core/v1:ConfigMap", undefined, "pgbouncer-config").inputs as any;
      assert.strictEqual(cm.metadata.name, "pgbouncer-config");
      assert.notDeepStrictEqual(cm.data, cmBefore, "the ini changed");
      assert.deepStrictEqual(workloadSpec().template, before, "no roll");
    });
  });

  describe("GIVEN a change of a setting PgBouncer cannot reload (the client port)", () => {
    it("THEN the pod template's no-reload hash changes, rolling the pods", async () => {
      await build();
      const before = workloadSpec().template.metadata.annotations[NO_RELOAD_ANNOTATION];
      await build(args({ workload: { ...prod.workload, port: 6433 } }));
      assert.notStrictEqual(workloadSpec().template.metadata.annotations[NO_RELOAD_ANNOTATION], before);
    });
  });

  describe("GIVEN a stack that must never co-locate the replicas, on a cluster with zones", () => {
    it("THEN the node spread is hard, still over usable nodes only, and zones are spread softly", async () => {
      await build(
        args({ workload: { ...prod.workload, spreadWhenUnsatisfiable: "DoNotSchedule", zoneSpread: true } }),
      );
      const spread = workloadSpec().template.spec.topologySpreadConstraints;
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
          ["kubernetes.io/hostname", "DoNotSchedule", 1, "Honor", "Honor", ["controller-revision-hash"]],
          [
            "topology.kubernetes.io/zone",
            "ScheduleAnyway",
            1,
            "Honor",
            "Honor",
            ["controller-revision-hash"],
          ],
        ],
      );
      for (const c of spread)
        assert.deepStrictEqual(c.labelSelector.matchLabels, workloadSpec().selector.matchLabels);
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

  it("runs one PgBouncer container per process, each its pod's script told its own number", () => {
    const pod = workloadSpec().template.spec;
    assert.deepStrictEqual(
      pod.containers.map((c: any) => [
        c.name,
        c.command,
        c.env?.find((e: any) => e.name === "PGBOUNCER_PROCESS")?.value,
      ]),
      [
        ["pgbouncer-1", podScriptCommand(), "1"],
        ["pgbouncer-2", podScriptCommand(), "2"],
        ["exporter-1", undefined, undefined],
        ["exporter-2", undefined, undefined],
      ],
    );
    const cm = one("kubernetes:core/v1:ConfigMap", undefined, "pgbouncer-config").inputs as any;
    assert.deepStrictEqual(Object.keys(cm.data), ["pgbouncer.ini"]);
    assert.strictEqual(cm.data["pgbouncer.ini"], pooler.ini);
  });

  it("lists every process of every pod as a peer; each process's script says its own peer_id and socket", () => {
    assert.match(
      pooler.ini,
      /^\[peers\]\n1 = host=pgbouncer-0\.[^ ]+ port=6432\n2 = host=pgbouncer-0\.[^ ]+ port=6432\n3 = host=pgbouncer-1\.[^ ]+ port=6432\n4 = host=pgbouncer-1\.[^ ]+ port=6432\n/m,
    );
    assert.doesNotMatch(pooler.ini, /^(peer_id|unix_socket_dir|so_reuseport) =/m);
    assert.match(pooler.ini, /^max_db_connections = 50$/m, "pool limits are per process");
  });

  it("declares the client port once, and probes each process through its own socket", () => {
    const [p1, p2] = workloadSpec().template.spec.containers;
    assert.deepStrictEqual(p1.ports, [{ name: "pgbouncer", containerPort: 6432, protocol: "TCP" }]);
    assert.strictEqual(p2.ports, undefined);
    assert.deepStrictEqual(p2.readinessProbe.exec.command, ["test", "-e", "/var/run/pgbouncer/2/ready"]);
    assert.deepStrictEqual(p2.livenessProbe.exec.command, [
      "test",
      "-S",
      "/var/run/pgbouncer/2/.s.PGSQL.6432",
    ]);
  });

  it("gives each process its own exporter, port and connection string key", () => {
    const pod = workloadSpec().template.spec;
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

  it("gives each process its own socket directory and script folder as in-memory volumes, the only writable ones", () => {
    const pod = workloadSpec().template.spec;
    assert.deepStrictEqual(
      pod.volumes.filter((v: any) => v.emptyDir),
      [
        { name: "run-1", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
        { name: "run-2", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
        { name: "applied-1", emptyDir: { medium: "Memory", sizeLimit: "4Mi" } },
        { name: "applied-2", emptyDir: { medium: "Memory", sizeLimit: "4Mi" } },
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

  it("signals the drain to the script (PID 1) after the delay, then waits while it lives", () => {
    const script = preStopCommand(7)[2];
    assert.strictEqual(script, "sleep 7; kill -INT 1; while kill -0 1 2>/dev/null; do sleep 1; done");
  });
});
