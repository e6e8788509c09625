/**
 * The CrossGuard pack: each check passes on what the program deploys and fails on the unsafe variant, and
 * the pack as a whole passes on the resources the offline engine records for both stacks.
 */
import * as assert from "assert";
import type { PolicyResource, StackValidationArgs } from "@pulumi/policy";
import { scramVerifier, serverLoginChecks } from "../../components/credentials";
import {
  poolBudget,
  selectorLabels,
  spreadConstraints,
  iniParameter,
  strandingSpreadConstraints,
} from "../../components/pgbouncer";
import {
  MIN_PROD_REPLICAS,
  POLICIES,
  type PolicyInputResource,
  type PostgresLimits,
  checkNoPlaintextSecrets,
  checkPoolBudget,
  checkProductionAvailability,
  checkRestrictedPod,
  checkServerLoginNeedsNoClientProof,
  checkSpreadCannotStrand,
  postgresLimitsFromStackFile,
  resolveLimits,
  surgePods,
} from "../../policy/policies";
import { plain, stackOfUrn } from "../../policy/resources";
import { stackFileConfig, rawStackConfig } from "../../stacks/stack-file";
import { runOffline } from "../../testing/engine";
import { OFFLINE_APP_USER, offlineVault } from "../../testing/offline-vault";
import { loadStackSettings } from "../../stacks/settings";

/**
 * The offline engine's records as CrossGuard would see them, with URNs naming the stack; `credentials`
 * overrides fields of the stack's `credentials` setting.
 */
async function recorded(stack: string, credentials: object = {}): Promise<PolicyInputResource[]> {
  const raw = rawStackConfig(stackFileConfig(stack));
  // With the verifier in the auth file, Vault holds the verifier copied from pg_authid, as that mode allowed
  // (and the stack has one login: a second one needs the password in the auth file).
  const verifiers = (credentials as { authFileSecret?: string }).authFileSecret === "verifier";
  const config = {
    "clipper-pgbouncer:credentials": JSON.stringify({
      ...(raw.credentials as object),
      ...(verifiers ? { secondLogin: undefined } : {}),
      ...credentials,
    }),
  };
  const appPasswordKey = loadStackSettings(stack).credentials.appPasswordKey;
  const values = verifiers ? { [appPasswordKey]: scramVerifier(OFFLINE_APP_USER, "the password") } : {};
  const run = await runOffline({ stack, config, vault: offlineVault(stack, { config, values }) });
  return run.resources.map((r) => ({
    type: r.type,
    name: r.name,
    urn: `urn:pulumi:${stack}::clipper-pgbouncer::${r.type}::${r.name}`,
    props: structuredClone(r.inputs) as Record<string, any>,
  }));
}

function violations(check: (report: (m: string) => void) => void): string[] {
  const found: string[] = [];
  check((m) => found.push(m));
  return found;
}

/** The pooler's own ConfigMap and Secret, where the TLS objects are of the same types. */
const POOLER_OBJECT: Readonly<Record<string, string>> = {
  "kubernetes:core/v1:ConfigMap": "pgbouncer-config",
  "kubernetes:core/v1:Secret": "pgbouncer-auth",
};

function one(resources: readonly PolicyInputResource[], type: string): PolicyInputResource {
  const found = resources.filter(
    (r) => r.type === type && (POOLER_OBJECT[type] === undefined || r.name === POOLER_OBJECT[type]),
  );
  assert.strictEqual(found.length, 1, `expected one ${type}`);
  return found[0];
}

const WORKLOAD = "kubernetes:apps/v1:StatefulSet";
const CONFIG_MAP = "kubernetes:core/v1:ConfigMap";

function mutate(resources: readonly PolicyInputResource[], type: string, change: (props: any) => void) {
  const copy = resources.map((r) => ({ ...r, props: structuredClone(r.props) }));
  change(one(copy, type).props);
  return copy;
}

const stacks: Record<string, PolicyInputResource[]> = {};
/** The stacks rendered with `credentials.authFileSecret: verifier` (Vault holding a verifier). */
const verifierStacks: Record<string, PolicyInputResource[]> = {};
const SECRET = "kubernetes:core/v1:Secret";

describe("policy pack", () => {
  before(async () => {
    for (const stack of ["staging", "prod"]) {
      stacks[stack] = await recorded(stack);
      verifierStacks[stack] = await recorded(stack, { authFileSecret: "verifier" });
    }
  });

  describe("pool-budget-fits-postgres", () => {
    const limitsOf = (stack: string): PostgresLimits => postgresLimitsFromStackFile(stack);

    it("reads PostgreSQL's limits from the stack file, as the program's settings do", () => {
      const db = loadStackSettings("prod").database;
      assert.deepStrictEqual(limitsOf("prod"), {
        maxConnections: db.maxConnections,
        reservedConnections: db.reservedConnections,
      });
      assert.deepStrictEqual(
        resolveLimits({ postgresMaxConnections: 7, postgresReservedConnections: 1 }, undefined),
        {
          maxConnections: 7,
          reservedConnections: 1,
        },
      );
      assert.strictEqual(
        resolveLimits({ postgresMaxConnections: 7 }, "prod").reservedConnections,
        db.reservedConnections,
      );
      assert.throws(() => resolveLimits({}, undefined), /no resource URN/);
    });

    for (const stack of ["staging", "prod"]) {
      it(`passes on ${stack} as deployed`, () => {
        assert.deepStrictEqual(
          violations((r) => checkPoolBudget(stacks[stack], limitsOf(stack), r)),
          [],
        );
      });
    }

    it("fails when PostgreSQL allows one connection fewer than the peak, with the arithmetic", () => {
      const s = loadStackSettings("prod");
      const peak = poolBudget({
        replicas: s.workload.replicas,
        surge: 0,
        processesPerPod: 1,
        serverCapPerProcess: s.pool.maxDbConnections,
        checkLoginsPerProcess: serverLoginChecks(s.credentials),
        postgresMaxConnections: 0,
        postgresReservedConnections: 0,
      }).peak;
      const limits = {
        maxConnections: peak - 1 + s.database.reservedConnections,
        reservedConnections: s.database.reservedConnections,
      };
      const found = violations((r) => checkPoolBudget(stacks.prod, limits, r));
      assert.strictEqual(found.length, 1);
      assert.match(
        found[0],
        new RegExp(`= ${peak}; PostgreSQL allows ${limits.maxConnections} max_connections`),
      );
      // …and exactly at the peak it fits.
      const fits = { ...limits, maxConnections: limits.maxConnections + 1 };
      assert.deepStrictEqual(
        violations((r) => checkPoolBudget(stacks.prod, fits, r)),
        [],
      );
    });

    it("fails when the StatefulSet's replicas grow past the budget", () => {
      const grown = mutate(stacks.prod, WORKLOAD, (p) => (p.spec.replicas = 10));
      assert.match(
        violations((r) => checkPoolBudget(grown, limitsOf("prod"), r)).join("\n"),
        /StatefulSet pgbouncer: the pool budget does not fit PostgreSQL: 10 replicas x 1 process\(es\)/,
      );
    });

    it("counts a Deployment's surge pods, were the pooler one (the budget it ran before)", () => {
      const asDeployment = stacks.prod.map((r) =>
        r.type === WORKLOAD
          ? {
              ...r,
              type: "kubernetes:apps/v1:Deployment",
              props: { ...structuredClone(r.props), spec: { ...structuredClone(r.props.spec), replicas: 3 } },
            }
          : r,
      );
      const s = loadStackSettings("prod");
      // 3 replicas + 1 surge pod (25% of 3, rounded up) x 50 = 200: over prod's 180
      assert.match(
        violations((r) => checkPoolBudget(asDeployment, limitsOf("prod"), r)).join("\n"),
        new RegExp(
          `Deployment pgbouncer: .*\\(3 replicas \\+ 1 surge pod\\) x 1 process\\(es\\) per pod x \\(${s.pool.maxDbConnections} server connections \\+ 2 of the server-login check\\)`,
        ),
      );
    });

    it("fails when the mounted ini has no max_db_connections", () => {
      const uncapped = mutate(stacks.prod, CONFIG_MAP, (p) => {
        p.data["pgbouncer.ini"] = String(p.data["pgbouncer.ini"]).replace(/^max_db_connections = .*$/m, "");
      });
      assert.match(
        violations((r) => checkPoolBudget(uncapped, limitsOf("prod"), r)).join("\n"),
        /sets no max_db_connections/,
      );
    });

    it("counts maxSurge as Kubernetes does, and none for a StatefulSet", () => {
      const d = (strategy: unknown) => ({
        type: "kubernetes:apps/v1:Deployment",
        name: "d",
        props: { spec: { strategy } },
      });
      assert.strictEqual(surgePods({ type: WORKLOAD, name: "s", props: { spec: {} } }, 4), 0);
      assert.strictEqual(surgePods(d({ rollingUpdate: { maxSurge: 2 } }), 4), 2);
      assert.strictEqual(surgePods(d({ rollingUpdate: { maxSurge: "50%" } }), 3), 2);
      assert.strictEqual(surgePods(d(undefined), 4), 1);
      assert.strictEqual(surgePods(d({ type: "Recreate" }), 4), 0);
    });

    it("reads a parameter of one ini section only", () => {
      const ini = "[databases]\nmax_db_connections = 1\n[pgbouncer]\n; comment\nmax_db_connections = 42\n";
      assert.strictEqual(iniParameter(ini, "pgbouncer", "max_db_connections"), "42");
      assert.strictEqual(iniParameter(ini, "pgbouncer", "default_pool_size"), undefined);
    });
  });

  describe("restricted-pod-security", () => {
    const deployment = () => one(stacks.prod, WORKLOAD);
    it("passes on the PgBouncer Deployment", () => {
      assert.deepStrictEqual(
        violations((r) => checkRestrictedPod(deployment(), r)),
        [],
      );
    });

    const breaches: [string, (spec: any) => void, RegExp][] = [
      ["hostNetwork", (s) => (s.hostNetwork = true), /hostNetwork is true/],
      [
        "a hostPath volume",
        (s) => s.volumes.push({ name: "h", hostPath: { path: "/" } }),
        /volume h is of type hostPath/,
      ],
      [
        "a privileged container",
        (s) => (s.containers[0].securityContext = { ...s.containers[0].securityContext, privileged: true }),
        /is privileged/,
      ],
      [
        "privilege escalation",
        (s) => delete s.containers[1].securityContext.allowPrivilegeEscalation,
        /allowPrivilegeEscalation/,
      ],
      [
        "root allowed",
        (s) => {
          s.securityContext.runAsNonRoot = false;
          s.containers[0].securityContext = { ...s.containers[0].securityContext, runAsNonRoot: undefined };
        },
        /runAsNonRoot/,
      ],
      [
        "uid 0",
        (s) => (s.containers[0].securityContext = { ...s.containers[0].securityContext, runAsUser: 0 }),
        /runs as uid 0/,
      ],
      [
        "capabilities kept",
        (s) =>
          (s.containers[0].securityContext = {
            ...s.containers[0].securityContext,
            capabilities: { drop: ["NET_RAW"] },
          }),
        /does not drop ALL/,
      ],
      [
        "a capability added",
        (s) =>
          (s.containers[0].securityContext = {
            ...s.containers[0].securityContext,
            capabilities: { drop: ["ALL"], add: ["SYS_ADMIN"] },
          }),
        /adds capability SYS_ADMIN/,
      ],
      [
        "seccomp Unconfined",
        (s) => {
          s.securityContext.seccompProfile = { type: "Unconfined" };
          s.containers[0].securityContext = { ...s.containers[0].securityContext, seccompProfile: undefined };
        },
        /seccomp profile is Unconfined/,
      ],
      [
        "a hostPort",
        (s) => (s.containers[0].ports = [{ containerPort: 6432, hostPort: 6432 }]),
        /hostPort 6432/,
      ],
    ];
    for (const [what, change, pattern] of breaches) {
      it(`fails on ${what}`, () => {
        const broken = mutate(stacks.prod, WORKLOAD, (p) => change(p.spec.template.spec));
        assert.match(violations((r) => checkRestrictedPod(one(broken, WORKLOAD), r)).join("\n"), pattern);
      });
    }

    it("leaves the backend's DeploymentPatch alone (another team's pod spec)", () => {
      const patch = one(stacks.prod, "kubernetes:apps/v1:DeploymentPatch");
      assert.deepStrictEqual(
        violations((r) => checkRestrictedPod(patch, r)),
        [],
      );
    });
  });

  describe("no-plaintext-secrets", () => {
    for (const stack of ["staging", "prod"]) {
      it(`passes on every resource of ${stack}, Secret values checked as secrets`, () => {
        for (const r of stacks[stack]) {
          assert.deepStrictEqual(
            violations((rep) => checkNoPlaintextSecrets(r, rep, { markersVisible: true })),
            [],
            `${r.type} ${r.name}`,
          );
        }
      });
    }

    it("fails on a password-like env var set to a literal", () => {
      const broken = mutate(
        stacks.prod,
        WORKLOAD,
        (p) => (p.spec.template.spec.containers[0].env = [{ name: "DB_PASSWORD", value: "hunter2" }]),
      );
      assert.match(
        violations((r) => checkNoPlaintextSecrets(one(broken, WORKLOAD), r)).join("\n"),
        /sets DB_PASSWORD to a literal; use valueFrom.secretKeyRef/,
      );
    });

    const texts: [string, string, RegExp][] = [
      ["a URL with a password", "postgres://app:hunter2@pgbouncer:6432/clipper", /a URL with a password/],
      ["a SCRAM verifier", "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5", /a SCRAM-SHA-256 verifier/],
      ["an md5 hash", `md5${"0123456789abcdef".repeat(2)}`, /an md5 password hash/],
      ["a password= setting", "host=postgres password=hunter2", /a password= setting/],
    ];
    for (const [what, text, pattern] of texts) {
      it(`fails on ${what} in a ConfigMap`, () => {
        const broken = mutate(stacks.prod, CONFIG_MAP, (p) => (p.data.extra = text));
        assert.match(
          violations((r) => checkNoPlaintextSecrets(one(broken, CONFIG_MAP), r)).join("\n"),
          pattern,
        );
      });
    }

    it("fails on a Secret whose value is not a Pulumi secret, where markers are visible", () => {
      const broken = mutate(
        stacks.prod,
        "kubernetes:core/v1:Secret",
        (p) => (p.stringData = { "userlist.txt": "plain" }),
      );
      const secret = one(broken, "kubernetes:core/v1:Secret");
      assert.match(
        violations((r) => checkNoPlaintextSecrets(secret, r, { markersVisible: true })).join("\n"),
        /stringData\.userlist\.txt is not a Pulumi secret/,
      );
      // CrossGuard removes the markers: then a Secret's own values are where credentials belong.
      assert.deepStrictEqual(
        violations((r) => checkNoPlaintextSecrets(secret, r)),
        [],
      );
    });
  });

  describe("prod-replicas-and-pdb", () => {
    it("passes on prod as deployed", () => {
      assert.deepStrictEqual(
        violations((r) => checkProductionAvailability(stacks.prod, r)),
        [],
      );
    });
    it(`fails below ${MIN_PROD_REPLICAS} replicas`, () => {
      const one_ = mutate(stacks.prod, WORKLOAD, (p) => (p.spec.replicas = MIN_PROD_REPLICAS - 1));
      assert.match(
        violations((r) => checkProductionAvailability(one_, r)).join("\n"),
        /replica\(s\) in production/,
      );
    });
    it("fails without a PodDisruptionBudget", () => {
      const none = stacks.prod.filter((r) => r.type !== "kubernetes:policy/v1:PodDisruptionBudget");
      assert.match(
        violations((r) => checkProductionAvailability(none, r)).join("\n"),
        /no PodDisruptionBudget selects its pods/,
      );
    });
    it("fails with a PodDisruptionBudget that never lets a pod go", () => {
      const stuck = mutate(
        stacks.prod,
        "kubernetes:policy/v1:PodDisruptionBudget",
        (p) => (p.spec.maxUnavailable = 0),
      );
      assert.match(violations((r) => checkProductionAvailability(stuck, r)).join("\n"), /never lets a pod/);
    });
  });

  describe("prod-spread-cannot-strand", () => {
    const prodWorkload = () => loadStackSettings("prod").workload;
    const withSpread = (stack: string, spread: unknown) =>
      mutate(stacks[stack], WORKLOAD, (p) => (p.spec.template.spec.topologySpreadConstraints = spread));
    const found = (resources: readonly PolicyInputResource[]) =>
      violations((r) => checkSpreadCannotStrand(one(resources, WORKLOAD), r));

    for (const stack of ["staging", "prod"]) {
      it(`passes on ${stack} as deployed`, () => {
        assert.deepStrictEqual(found(stacks[stack]), []);
      });
    }

    it("passes on the hard node spread a stack may choose, since it counts only usable nodes", () => {
      const hard = spreadConstraints(
        { ...prodWorkload(), spreadWhenUnsatisfiable: "DoNotSchedule", zoneSpread: true },
        selectorLabels("pgbouncer"),
      );
      assert.deepStrictEqual(found(withSpread("prod", hard)), []);
    });

    it("fails on the spread that stranded a replica (DoNotSchedule, nodeTaintsPolicy left unset)", () => {
      const old = strandingSpreadConstraints(prodWorkload(), selectorLabels("pgbouncer"));
      assert.deepStrictEqual(found(withSpread("prod", old)), [
        "StatefulSet pgbouncer: the DoNotSchedule spread over kubernetes.io/hostname has nodeTaintsPolicy " +
          "unset (Ignore), so cordoned and tainted nodes count as empty domains and a pod a node drain evicts " +
          "can stay Pending; set nodeTaintsPolicy: Honor, or whenUnsatisfiable: ScheduleAnyway",
      ]);
    });

    it("fails on nodeTaintsPolicy Ignore spelled out, and on nodeAffinityPolicy Ignore", () => {
      const [c] = strandingSpreadConstraints(prodWorkload(), selectorLabels("pgbouncer"));
      assert.match(
        found(withSpread("prod", [{ ...c, nodeTaintsPolicy: "Ignore" }])).join("\n"),
        /has nodeTaintsPolicy Ignore, so cordoned/,
      );
      const ignoresAffinity = [{ ...c, nodeTaintsPolicy: "Honor", nodeAffinityPolicy: "Ignore" }];
      assert.deepStrictEqual(found(withSpread("prod", ignoresAffinity)), [
        "StatefulSet pgbouncer: the DoNotSchedule spread over kubernetes.io/hostname has nodeAffinityPolicy " +
          "Ignore, so nodes the pod may not use count as empty domains and a pod a node drain evicts can stay " +
          "Pending; set nodeAffinityPolicy: Honor (the default)",
      ]);
    });

    it("takes an unset whenUnsatisfiable as the API's default, DoNotSchedule", () => {
      const [c] = strandingSpreadConstraints(prodWorkload(), selectorLabels("pgbouncer"));
      const unset: Partial<typeof c> = { ...c };
      delete unset.whenUnsatisfiable;
      assert.strictEqual(found(withSpread("prod", [unset])).length, 1);
    });

    it("leaves a soft spread alone: ScheduleAnyway never keeps a pod Pending", () => {
      const [c] = strandingSpreadConstraints(prodWorkload(), selectorLabels("pgbouncer"));
      assert.deepStrictEqual(found(withSpread("prod", [{ ...c, whenUnsatisfiable: "ScheduleAnyway" }])), []);
    });
  });

  describe("prod-server-login-without-client-proof", () => {
    const found = (resources: readonly PolicyInputResource[]) =>
      violations((r) => checkServerLoginNeedsNoClientProof(resources, r));

    for (const stack of ["staging", "prod"]) {
      it(`passes on ${stack} as deployed: the application user's entry is its password, the stats user's a verifier`, () => {
        assert.deepStrictEqual(found(stacks[stack]), []);
      });
    }

    it("fails on authFileSecret verifier, naming the user and the fix", () => {
      assert.deepStrictEqual(found(verifierStacks.prod), [
        "StatefulSet pgbouncer: the auth file holds a SCRAM verifier for clipper_app, so PgBouncer can log in " +
          "to PostgreSQL as clipper_app only with the keys of a client's finished SCRAM login: one wrong " +
          "password as the first login after a start locks every later login out until PgBouncer restarts. " +
          "Set credentials.authFileSecret: password (the default) and store the password in Vault",
      ]);
    });

    it("reads a Secret's base64 data as well as its stringData", () => {
      const asData = mutate(verifierStacks.prod, SECRET, (p) => {
        const text = plain(p.stringData)["userlist.txt"] as string;
        p.data = { "userlist.txt": Buffer.from(text).toString("base64") };
        delete p.stringData;
      });
      assert.strictEqual(found(asData).length, 1);
    });

    it("reports an auth file it cannot read rather than passing it", () => {
      const gone = stacks.prod.filter((r) => r.type !== SECRET);
      assert.deepStrictEqual(found(gone), [
        "StatefulSet pgbouncer: its auth file (Secret key userlist.txt) could not be read, so whether " +
          "PgBouncer's server login needs a client's SCRAM keys cannot be told",
      ]);
    });
  });

  describe("the pack over the offline records (as CrossGuard calls it)", () => {
    function stackArgs(resources: readonly PolicyInputResource[], config: object = {}): StackValidationArgs {
      return {
        resources: resources.map((r) => ({ ...r, props: r.props }) as unknown as PolicyResource),
        stackTags: new Map(),
        getConfig: <T extends object>() => config as T,
        notApplicable: () => {
          throw new Error("not applicable");
        },
      };
    }
    /** Every finding of the pack; the advisory on tag-pinned images only with `advisory`. */
    async function runPack(
      resources: readonly PolicyInputResource[],
      config: object = {},
      advisory = false,
    ): Promise<string[]> {
      const found: string[] = [];
      for (const p of POLICIES.filter((q) => advisory || q.enforcementLevel !== "advisory")) {
        if ("validateStack" in p) {
          await p.validateStack(stackArgs(resources, config), (m) => found.push(`${p.name}: ${m}`));
        } else {
          for (const r of resources) {
            const v = p.validateResource;
            for (const f of Array.isArray(v) ? v : v ? [v] : []) {
              await f(
                {
                  ...r,
                  urn: r.urn ?? "",
                  opts: {} as any,
                  stackTags: new Map(),
                  isType: () => false,
                  asType: () => undefined,
                  getConfig: <T extends object>() => ({}) as T,
                  notApplicable: () => {
                    throw new Error("n/a");
                  },
                },
                (m) => found.push(`${p.name}: ${m}`),
              );
            }
          }
        }
      }
      return found;
    }

    for (const stack of ["staging", "prod"]) {
      it(`every policy passes on ${stack}`, async () => {
        assert.strictEqual(stackOfUrn(stacks[stack][0].urn), stack);
        assert.deepStrictEqual(await runPack(stacks[stack]), []);
      });
    }

    it("a violation in prod reaches the report: one replica, and a budget PostgreSQL cannot hold", async () => {
      const broken = mutate(stacks.prod, WORKLOAD, (p) => (p.spec.replicas = 1));
      const found = await runPack(broken, { postgresMaxConnections: 30, postgresReservedConnections: 3 });
      assert.ok(
        found.some((m) => m.startsWith("prod-replicas-and-pdb:")),
        found.join("\n"),
      );
      assert.ok(
        found.some((m) => m.startsWith("pool-budget-fits-postgres:")),
        found.join("\n"),
      );
    });

    it("a prod spread that can strand a replica reaches the report, and only that", async () => {
      const workload = loadStackSettings("prod").workload;
      const old = strandingSpreadConstraints(workload, selectorLabels("pgbouncer"));
      const broken = mutate(
        stacks.prod,
        WORKLOAD,
        (p) => (p.spec.template.spec.topologySpreadConstraints = old),
      );
      const found = await runPack(broken);
      assert.strictEqual(found.length, 1, found.join("\n"));
      assert.match(found[0], /^prod-spread-cannot-strand: StatefulSet pgbouncer: the DoNotSchedule spread/);
    });

    it("a prod auth file with the application user's verifier reaches the report, and only that", async () => {
      const found = await runPack(verifierStacks.prod);
      assert.strictEqual(found.length, 1, found.join("\n"));
      assert.match(
        found[0],
        /^prod-server-login-without-client-proof: StatefulSet pgbouncer: the auth file holds a SCRAM verifier for clipper_app/,
      );
      assert.deepStrictEqual(await runPack(verifierStacks.staging), [], "staging may choose the verifier");
    });

    it("prod's images, pinned by tag only as shipped, get the advisory, once per container", async () => {
      const found = await runPack(stacks.prod, {}, true);
      assert.deepStrictEqual(found, [
        "prod-images-by-digest: StatefulSet pgbouncer: container pgbouncer runs ghcr.io/cloudnative-pg/pgbouncer:1.25.2, " +
          "pinned by tag only; a tag can be moved. Set pgbouncer.digest / exporter.digest to the digest your registry serves",
        "prod-images-by-digest: StatefulSet pgbouncer: container exporter runs prometheuscommunity/pgbouncer-exporter:v0.12.1, " +
          "pinned by tag only; a tag can be moved. Set pgbouncer.digest / exporter.digest to the digest your registry serves",
      ]);
      const digest = `sha256:${"ab".repeat(32)}`;
      const pinned = mutate(stacks.prod, WORKLOAD, (p) => {
        for (const c of p.spec.template.spec.containers) c.image = `${c.image}@${digest}`;
      });
      assert.deepStrictEqual(await runPack(pinned, {}, true), []);
    });

    it("a prod pooler below the TLS floor reaches the report, each leg by its key", async () => {
      const weak = (client: string, server: string) =>
        mutate(stacks.prod, CONFIG_MAP, (p) => {
          p.data["pgbouncer.ini"] = p.data["pgbouncer.ini"]
            .replace(/^client_tls_sslmode = .*$/m, `client_tls_sslmode = ${client}`)
            .replace(/^server_tls_sslmode = .*$/m, `server_tls_sslmode = ${server}`);
        });
      assert.deepStrictEqual(await runPack(weak("require", "verify-ca")), [], "verify-ca is the floor");
      const found = await runPack(weak("prefer", "require"));
      assert.deepStrictEqual(found, [
        "prod-tls-both-legs: StatefulSet pgbouncer: client_tls_sslmode is prefer; production needs require, or the " +
          "application's password crosses the pod network in the clear (tls.clientSslMode)",
        "prod-tls-both-legs: StatefulSet pgbouncer: server_tls_sslmode is require; production needs verify-ca or " +
          "verify-full, or whoever answers for the database's address gets the server logins (tls.serverSslMode " +
          "and tls.serverCa)",
      ]);
      const absent = mutate(stacks.prod, CONFIG_MAP, (p) => {
        p.data["pgbouncer.ini"] = p.data["pgbouncer.ini"].replace(
          /^(client|server)_tls_sslmode = .*\n/gm,
          "",
        );
      });
      const defaults = await runPack(absent);
      assert.match(defaults.join("\n"), /client_tls_sslmode is disable;/, "PgBouncer's own default counts");
      assert.match(defaults.join("\n"), /server_tls_sslmode is prefer;/, "PgBouncer's own default counts");
      assert.deepStrictEqual(
        await runPack(
          mutate(stacks.staging, CONFIG_MAP, (p) => {
            p.data["pgbouncer.ini"] = p.data["pgbouncer.ini"].replace(
              /^client_tls_sslmode = .*$/m,
              "client_tls_sslmode = disable",
            );
          }),
        ),
        [],
        "staging may choose (it renders serverSslMode prefer)",
      );
    });

    it("staging is not held to the production rules", async () => {
      const single = mutate(stacks.staging, WORKLOAD, (p) => {
        p.spec.replicas = 1;
        p.spec.template.spec.topologySpreadConstraints = strandingSpreadConstraints(
          { spreadTopologyKey: "kubernetes.io/hostname" },
          selectorLabels("pgbouncer"),
        );
      });
      assert.deepStrictEqual(await runPack(single), []);
    });
  });
});
