import * as assert from "assert";
import { ConfigError } from "../../components/common";
import { poolSizingWarning } from "../../components/pgbouncer";
import { parseSettings, loadStackSettings } from "../../stacks/settings";
import { rawStackConfig } from "../../stacks/stack-file";

/** The messages of the ConfigError that `raw` causes. */
function problems(raw: Record<string, unknown>): string[] {
  try {
    parseSettings(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.key}: ${i.message}`);
    throw e;
  }
  assert.fail(`expected ${JSON.stringify(raw)} to be refused`);
}

function expectProblem(raw: Record<string, unknown>, pattern: RegExp): void {
  const found = problems(raw);
  assert.ok(
    found.some((p) => pattern.test(p)),
    `expected a problem matching ${pattern}, got:\n${found.join("\n")}`,
  );
}

describe("stack settings", () => {
  describe("the stack files", () => {
    it("prod has every value of the spec", () => {
      const s = loadStackSettings("prod");
      assert.strictEqual(s.workload.replicas, 2);
      assert.strictEqual(s.workload.port, 6432);
      assert.strictEqual(s.exporter.port, 9127);
      assert.strictEqual(s.exporter.image, "prometheuscommunity/pgbouncer-exporter:v0.12.1");
      assert.deepStrictEqual(s.workload.resources, {
        cpuRequest: "100m",
        cpuLimit: "500m",
        memoryRequest: "64Mi",
        memoryLimit: "256Mi",
      });
      assert.deepStrictEqual(
        {
          mode: s.pool.mode,
          defaultPoolSize: s.pool.defaultPoolSize,
          minPoolSize: s.pool.minPoolSize,
          maxDbConnections: s.pool.maxDbConnections,
          maxClientConn: s.pool.maxClientConn,
          queryWait: s.pool.queryWaitTimeoutSeconds,
          serverIdle: s.pool.serverIdleTimeoutSeconds,
          serverLifetime: s.pool.serverLifetimeSeconds,
        },
        {
          mode: "transaction",
          defaultPoolSize: 50,
          minPoolSize: 10,
          maxDbConnections: 50,
          maxClientConn: 500,
          queryWait: 120,
          serverIdle: 600,
          serverLifetime: 3600,
        },
      );
    });

    it("staging parses and differs from prod only through its file", () => {
      const staging = loadStackSettings("staging");
      assert.strictEqual(staging.namespace, "clipper-staging");
      assert.strictEqual(staging.pool.maxDbConnections, 20);
    });
  });

  describe("defaults", () => {
    /** Where a stack deploys: no default can say (the cluster, Vault and Grafana are the stack's own). */
    const PINS = {
      kubernetesContext: "clipper-test",
      vaultAddress: "https://vault.example:8200",
      grafanaUrl: "https://grafana.example",
    };
    it("a stack that sets only the required settings gets the documented defaults", () => {
      const s = parseSettings({
        providers: PINS,
        database: { maxConnections: 200 },
        monitoring: { runbookBaseUrl: "https://runbooks.example/pgbouncer" },
        // Verifying PostgreSQL (the default) needs its CA: only the stack can name it.
        tls: { serverCa: { name: "postgres-ca" } },
      });
      assert.strictEqual(s.namespace, "clipper");
      assert.deepStrictEqual(s.tls, {
        clientSslMode: "require",
        certificate: {
          source: "vault-pki",
          mount: "pki",
          role: "clipper-pgbouncer",
          ttlSeconds: 2592000,
          renewBeforeSeconds: 864000,
        },
        serverSslMode: "verify-full",
        serverCa: { source: "configmap", name: "postgres-ca", key: "ca.crt" },
        protocols: "tlsv1.2,tlsv1.3",
      });
      assert.deepStrictEqual(
        [
          s.workload.reloadCheckSeconds,
          s.workload.canaryHoldSeconds,
          s.workload.serverLoginFailureSeconds,
          s.workload.drainSeconds,
        ],
        [10, 60, 10, 30],
      );
      assert.strictEqual(s.workload.version, "1.25.2");
      assert.strictEqual(s.pool.maxPreparedStatements, 200);
      assert.strictEqual(s.credentials.authType, "scram-sha-256");
      assert.deepStrictEqual(
        [s.workload.spreadTopologyKey, s.workload.spreadWhenUnsatisfiable, s.workload.zoneSpread],
        ["kubernetes.io/hostname", "ScheduleAnyway", false],
      );
    });
    it("a stack may choose a hard node spread and a zone spread", () => {
      const s = parseSettings({
        providers: PINS,
        database: { maxConnections: 200 },
        monitoring: { runbookBaseUrl: "https://runbooks.example/pgbouncer" },
        pgbouncer: { spreadWhenUnsatisfiable: "DoNotSchedule", zoneSpread: true },
        tls: { serverCa: { name: "postgres-ca" } },
      });
      assert.deepStrictEqual(
        [s.workload.spreadWhenUnsatisfiable, s.workload.zoneSpread],
        ["DoNotSchedule", true],
      );
    });
  });

  describe("refusals, each naming the key", () => {
    it("a missing runbook URL for the alerts", () =>
      expectProblem({}, /^clipper-pgbouncer:monitoring.runbookBaseUrl: is required/));
    it("a missing max_connections of PostgreSQL", () =>
      expectProblem(
        {},
        /^clipper-pgbouncer:database.maxConnections: is required \(an integer from 1 to 262143\)/,
      ));
    it("an unknown top-level key, with the known ones", () =>
      expectProblem(
        { pools: {} },
        /^clipper-pgbouncer:pools: is not a known setting \(known: namespace, providers, pgbouncer, pool, database, exporter, network, tls, credentials, backend, monitoring\)$/,
      ));
    it("an invalid namespace", () =>
      expectProblem(
        { namespace: "Clipper_NS" },
        /^clipper-pgbouncer:namespace: is "Clipper_NS"; must be a Kubernetes namespace/,
      ));
    // The same words as for backend.namespace (one string rule); before the schema it said only "must be a
    // Kubernetes namespace name" for an empty or non-string namespace.
    it("an empty namespace", () =>
      expectProblem(
        { namespace: "" },
        /^clipper-pgbouncer:namespace: is ""; must be a non-empty string \(a Kubernetes namespace name \(RFC 1123 label\)\)$/,
      ));
    it("a namespace that is not a string", () =>
      expectProblem(
        { namespace: 5 },
        /^clipper-pgbouncer:namespace: is 5; must be a non-empty string \(a Kubernetes namespace name/,
      ));
    it("a negative pool size", () =>
      expectProblem(
        { pool: { defaultPoolSize: -5 } },
        /^clipper-pgbouncer:pool.defaultPoolSize: is -5; must be an integer from 1 to 10000/,
      ));
    it("an unknown pool mode", () =>
      expectProblem(
        { pool: { mode: "pipelined" } },
        /^clipper-pgbouncer:pool.mode: is "pipelined"; must be one of/,
      ));
    it("min_pool_size above default_pool_size", () =>
      expectProblem(
        { pool: { minPoolSize: 60 } },
        /^clipper-pgbouncer:pool.minPoolSize: is 60; must not exceed clipper-pgbouncer:pool.defaultPoolSize \(50\)/,
      ));
    it("default_pool_size above the server cap", () =>
      expectProblem(
        { pool: { defaultPoolSize: 40, maxDbConnections: 30 } },
        /^clipper-pgbouncer:pool.defaultPoolSize: is 40; must not exceed clipper-pgbouncer:pool.maxDbConnections \(30\)/,
      ));
    it("max_client_conn below the server cap", () =>
      expectProblem(
        { pool: { maxClientConn: 10 } },
        /^clipper-pgbouncer:pool.maxClientConn: is 10; must be at least/,
      ));
    it("a server_login_retry of 0", () =>
      expectProblem(
        { pool: { serverLoginRetrySeconds: 0 } },
        /^clipper-pgbouncer:pool.serverLoginRetrySeconds: is 0; must be an integer from 1 to 3600/,
      ));
    it("a CPU core count of 0", () =>
      expectProblem(
        { database: { maxConnections: 100, cpuCores: 0 } },
        /^clipper-pgbouncer:database.cpuCores: is 0; must be an integer from 1 to 1024/,
      ));
    it("a negative timeout", () =>
      expectProblem(
        { pool: { queryWaitTimeoutSeconds: -1 } },
        /^clipper-pgbouncer:pool.queryWaitTimeoutSeconds: is -1/,
      ));
    it("a server sslmode that verifies without a CA", () =>
      expectProblem(
        { tls: { serverSslMode: "verify-ca" } },
        /^clipper-pgbouncer:tls.serverCa: is required when clipper-pgbouncer:tls.serverSslMode is "verify-ca"/,
      ));
    it("a client sslmode that would demand client certificates", () =>
      expectProblem(
        { tls: { clientSslMode: "verify-full" } },
        /^clipper-pgbouncer:tls.clientSslMode: is "verify-full"; must be one of "disable", "allow", "prefer", "require"/,
      ));
    it("an unknown server sslmode", () =>
      expectProblem(
        { tls: { serverSslMode: "verify" } },
        /^clipper-pgbouncer:tls.serverSslMode: is "verify"; must be one of/,
      ));
    it("an old TLS protocol", () =>
      expectProblem(
        { tls: { protocols: "tlsv1.1,tlsv1.2" } },
        /^clipper-pgbouncer:tls.protocols: is "tlsv1.1,tlsv1.2"; must list each of tlsv1.2, tlsv1.3 at most once/,
      ));
    it("a renewal window as long as the certificate's validity", () =>
      expectProblem(
        { tls: { certificate: { ttlSeconds: 86400, renewBeforeSeconds: 86400 } } },
        /^clipper-pgbouncer:tls.certificate.renewBeforeSeconds: is 86400; must be below clipper-pgbouncer:tls.certificate.ttlSeconds \(86400\)/,
      ));
    it("a certificate Secret source without its name", () =>
      expectProblem(
        { tls: { certificate: { source: "secret" } } },
        /^clipper-pgbouncer:tls.certificate.name: is required/,
      ));
    it("a certificate while clients get no TLS", () =>
      expectProblem(
        { tls: { clientSslMode: "disable", certificate: { source: "secret", name: "x" } } },
        /^clipper-pgbouncer:tls.certificate: is set while clipper-pgbouncer:tls.clientSslMode is "disable"/,
      ));
    it("a server CA with server TLS off", () =>
      expectProblem(
        { tls: { serverSslMode: "disable", serverCa: { name: "postgres-ca" } } },
        /^clipper-pgbouncer:tls.serverCa: is set while clipper-pgbouncer:tls.serverSslMode is "disable"/,
      ));
    it("a Vault server CA without its path", () =>
      expectProblem(
        { tls: { serverCa: { source: "vault", mount: "secret" } } },
        /^clipper-pgbouncer:tls.serverCa.path: is required/,
      ));
    it("a misspelt TLS setting", () =>
      expectProblem(
        { tls: { sslmode: "require" } },
        /^clipper-pgbouncer:tls.sslmode: is not a known setting/,
      ));
    it("an image digest that is not sha256 and 64 hex digits", () =>
      expectProblem(
        { pgbouncer: { digest: "sha256:abc" } },
        /^clipper-pgbouncer:pgbouncer.digest: is "sha256:abc"; must be an image digest, sha256: and 64 hex digits/,
      ));
    it("an exporter digest inside the image reference", () =>
      expectProblem(
        { exporter: { image: `x/y:v1@sha256:${"a".repeat(64)}` } },
        /^clipper-pgbouncer:exporter.image: is .*; must be an image reference with a tag \(the digest goes in digest\)/,
      ));
    it("an external database host without its addresses for the egress policy", () =>
      expectProblem(
        { database: { maxConnections: 100, host: "clipper.abc123.eu-west-1.rds.amazonaws.com" } },
        /^clipper-pgbouncer:network.databaseCidrs: is required: clipper-pgbouncer:database.host "clipper.abc123.eu-west-1.rds.amazonaws.com" is neither an in-cluster Service name nor an IP address/,
      ));
    it("a database CIDR that is not one", () =>
      expectProblem(
        { network: { databaseCidrs: ["10.0.0.0/33"] } },
        /^clipper-pgbouncer:network.databaseCidrs: is \["10.0.0.0\/33"\]; must be a non-empty list of IPv4 CIDRs/,
      ));
    it("a misspelt pool setting", () =>
      expectProblem(
        { pool: { maxDBConnections: 10 } },
        /^clipper-pgbouncer:pool.maxDBConnections: is not a known setting/,
      ));
    it("an impossible pool budget, with the arithmetic", () =>
      expectProblem(
        { pgbouncer: { replicas: 3 }, pool: { maxDbConnections: 50 }, database: { maxConnections: 100 } },
        /^clipper-pgbouncer:pool.maxDbConnections: is 50; the pool budget does not fit PostgreSQL: 3 replicas x 1 process\(es\) per pod x \(50 server connections \+ 1 of the server-login check\) per process = 153; PostgreSQL allows 100 max_connections - 3 reserved = 97/,
      ));
    it("a budget that several processes per pod break", () =>
      expectProblem(
        { pgbouncer: { processesPerPod: 2 }, pool: { maxDbConnections: 25, defaultPoolSize: 25 } },
        /2 replicas x 2 process\(es\) per pod x \(25 server connections \+ 1 of the server-login check\) per process = 104/,
      ));
    it("reserved connections not below max_connections", () =>
      expectProblem(
        { database: { maxConnections: 10, reservedConnections: 10 } },
        /^clipper-pgbouncer:database.reservedConnections: is 10; must be below/,
      ));
    it("a database host that is not a DNS name", () =>
      expectProblem(
        { database: { host: "postgres db" } },
        /^clipper-pgbouncer:database.host: is "postgres db"; must be a DNS name/,
      ));
    it("a database name PgBouncer would need to quote", () =>
      expectProblem(
        { database: { name: "Clipper-DB" } },
        /^clipper-pgbouncer:database.name: is "Clipper-DB"/,
      ));
    it("a port out of range", () =>
      expectProblem(
        { database: { port: 70000 } },
        /^clipper-pgbouncer:database.port: is 70000; must be an integer from 1 to 65535/,
      ));
    it("zero replicas", () =>
      expectProblem(
        { pgbouncer: { replicas: 0 } },
        /^clipper-pgbouncer:pgbouncer.replicas: is 0; must be an integer from 1 to 50/,
      ));
    it("a PgBouncer release without the 1.25.2 security fixes", () =>
      expectProblem(
        { pgbouncer: { version: "1.24.1" } },
        /^clipper-pgbouncer:pgbouncer.version: is "1.24.1"; must be 1.25.2 or later/,
      ));
    it("a version that is not a release number", () =>
      expectProblem(
        { pgbouncer: { version: "latest" } },
        /^clipper-pgbouncer:pgbouncer.version: is "latest"; must be a PgBouncer release/,
      ));
    it("an image repository with a tag (the tag is the version)", () =>
      expectProblem(
        { pgbouncer: { image: "pgbouncer/pgbouncer:latest" } },
        /^clipper-pgbouncer:pgbouncer.image: is "pgbouncer\/pgbouncer:latest"/,
      ));
    it("a privileged client port", () =>
      expectProblem({ pgbouncer: { port: 80 } }, /^clipper-pgbouncer:pgbouncer.port: is 80/));
    it("a grace period too short for the preStop delay", () =>
      expectProblem(
        { pgbouncer: { preStopDelaySeconds: 30, terminationGracePeriodSeconds: 35 } },
        /^clipper-pgbouncer:pgbouncer.terminationGracePeriodSeconds: is 35; must be at least clipper-pgbouncer:pgbouncer.preStopDelaySeconds \(30\) \+ clipper-pgbouncer:pgbouncer.drainSeconds \(30\) \+ 10/,
      ));
    it("a drain longer than the grace period leaves time for", () =>
      expectProblem(
        { pgbouncer: { drainSeconds: 110 } },
        /^clipper-pgbouncer:pgbouncer.terminationGracePeriodSeconds: is 120; must be at least clipper-pgbouncer:pgbouncer.preStopDelaySeconds \(10\) \+ clipper-pgbouncer:pgbouncer.drainSeconds \(110\) \+ 10/,
      ));
    it("a spread policy the scheduler does not know", () =>
      expectProblem(
        { pgbouncer: { spreadWhenUnsatisfiable: "Never" } },
        /^clipper-pgbouncer:pgbouncer.spreadWhenUnsatisfiable: is "Never"; must be one of "ScheduleAnyway", "DoNotSchedule"/,
      ));
    it("a zone spread that is not a boolean", () =>
      expectProblem(
        { pgbouncer: { zoneSpread: "yes" } },
        /^clipper-pgbouncer:pgbouncer.zoneSpread: is "yes"; must be true or false/,
      ));
    it("a zone spread on top of a spread that already is over zones", () =>
      expectProblem(
        { pgbouncer: { zoneSpread: true, spreadTopologyKey: "topology.kubernetes.io/zone" } },
        /^clipper-pgbouncer:pgbouncer.zoneSpread: is true while clipper-pgbouncer:pgbouncer.spreadTopologyKey is "topology.kubernetes.io\/zone": the replicas already spread over zones/,
      ));
    it("a malformed CPU quantity", () =>
      expectProblem(
        { pgbouncer: { resources: { cpuLimit: "half" } } },
        /^clipper-pgbouncer:pgbouncer.resources.cpuLimit: is "half"/,
      ));
    it("a CPU request above its limit", () =>
      expectProblem(
        { pgbouncer: { resources: { cpuRequest: "1", cpuLimit: "500m" } } },
        /^clipper-pgbouncer:pgbouncer.resources.cpuRequest: is 1; must not exceed/,
      ));
    it("a memory request above its limit", () =>
      expectProblem(
        { pgbouncer: { resources: { memoryRequest: "1Gi", memoryLimit: "256Mi" } } },
        /^clipper-pgbouncer:pgbouncer.resources.memoryRequest: is 1Gi; must not exceed/,
      ));
    it("a malformed memory quantity", () =>
      expectProblem(
        { pgbouncer: { resources: { memoryLimit: "256MB" } } },
        /^clipper-pgbouncer:pgbouncer.resources.memoryLimit: is "256MB"/,
      ));
    it("an unpinned exporter image", () =>
      expectProblem(
        { exporter: { image: "prometheuscommunity/pgbouncer-exporter" } },
        /^clipper-pgbouncer:exporter.image: is "prometheuscommunity\/pgbouncer-exporter"; must be pinned/,
      ));
    it("an exporter port equal to the client port", () =>
      expectProblem(
        { exporter: { port: 6432 } },
        /^clipper-pgbouncer:exporter.port: is 6432; the exporters of 1 process\(es\) use ports 6432-6432, which must not include clipper-pgbouncer:pgbouncer.port \(6432\)/,
      ));
    it("exporter ports of several processes that run into the client port", () =>
      expectProblem(
        {
          pgbouncer: { processesPerPod: 3 },
          exporter: { port: 6430 },
          pool: { maxDbConnections: 10, defaultPoolSize: 10, minPoolSize: 5 },
        },
        /^clipper-pgbouncer:exporter.port: is 6430; the exporters of 3 process\(es\) use ports 6430-6432, which must not include/,
      ));
    it("exporter ports of several processes beyond 65535", () =>
      expectProblem(
        {
          pgbouncer: { processesPerPod: 2 },
          exporter: { port: 65535 },
          pool: { maxDbConnections: 10, defaultPoolSize: 10, minPoolSize: 5 },
        },
        /^clipper-pgbouncer:exporter.port: is 65535; the exporters of 2 processes need ports up to 65536, above 65535/,
      ));
    it("a stats user PgBouncer would need to quote", () =>
      expectProblem(
        { exporter: { statsUser: "stats user" } },
        /^clipper-pgbouncer:exporter.statsUser: is "stats user"/,
      ));
    it("an empty backend selector", () =>
      expectProblem(
        { network: { backendPodSelector: {} } },
        /^clipper-pgbouncer:network.backendPodSelector: is \{\}/,
      ));
    it("a section that is not an object", () =>
      expectProblem({ pool: "big" }, /^clipper-pgbouncer:pool: must be an object, got "big"/));
    it("reports every problem at once", () => {
      assert.strictEqual(
        problems({ pool: { defaultPoolSize: 0, maxClientConn: 0 }, pgbouncer: { replicas: -1 } }).length >= 3,
        true,
      );
    });
  });

  describe("the pool sizing warning (docs/tuning.md)", () => {
    const keys = { pool: "clipper-pgbouncer:pool", database: "clipper-pgbouncer:database" };
    const prod = loadStackSettings("prod");
    const withCores = (cpuCores?: number) => ({ ...prod, database: { ...prod.database, cpuCores } });

    it("says nothing when PostgreSQL's cores are not set", () => {
      assert.strictEqual(poolSizingWarning(withCores(undefined), keys), undefined);
    });
    it("warns above 10 steady-state server connections per core, with the arithmetic", () => {
      assert.strictEqual(
        poolSizingWarning(withCores(8), keys),
        "clipper-pgbouncer:pool.maxDbConnections: 2 replicas x 1 process(es) x 50 = 100 server connections in " +
          "steady state for 8 PostgreSQL cores (clipper-pgbouncer:database.cpuCores), 12.5 per core; above 10 " +
          "per core they add contention, not throughput, on CPU-bound work (docs/tuning.md)",
      );
    });
    it("says nothing at exactly 10 per core", () => {
      assert.strictEqual(poolSizingWarning(withCores(10), keys), undefined);
    });
  });

  describe("rawStackConfig", () => {
    it("decodes structured values and keeps only this project's keys", () => {
      assert.deepStrictEqual(
        rawStackConfig({
          "clipper-pgbouncer:pool": '{"defaultPoolSize":5}',
          "clipper-pgbouncer:namespace": "clipper",
          "vault:address": "https://vault",
        }),
        { pool: { defaultPoolSize: 5 }, namespace: "clipper" },
      );
    });
  });
});
