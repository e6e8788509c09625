import * as pulumi from "@pulumi/pulumi";
import {
  type BackendObjects,
  type LastRoute,
  backendObjects,
  backendReferences,
  connectionUrl,
  metricsEndpoint,
  renameWhileRouted,
} from "../components/backend-route";
import { BackendRoute } from "../components/backend-route/resources";
import { type PreflightProblem, PreflightError, SecretInputs, UserError } from "../components/common";
import { loadPoolerCredentials } from "../components/credentials/resources";
import { scrapeAnnotations } from "../components/monitoring";
import { PgBouncerMonitoring } from "../components/monitoring/resources";
import { type CaRef, backendTls, poolSizingWarning, poolerReferences } from "../components/pgbouncer";
import {
  PgBouncer,
  type PinnedVault,
  checkPkiRole,
  readServerCa,
  vaultClientFailed,
} from "../components/pgbouncer/resources";
import { type ClusterReader, type ShellEnv, checkClusterObjects } from "../components/providers";
import { grafanaProvider, kubernetesProvider, vaultProvider } from "../components/providers/resources";
import { type StackSettings } from "./settings";
import { key } from "./stack-file";

/**
 * The stack outputs: an API the backend reads with a `StackReference` (camelCase, flat, stable), e.g.
 * `new pulumi.StackReference("<org>/clipper-pgbouncer/prod").requireOutput("dbHost")`.
 */
export interface EnvironmentOutputs {
  /**
   * Host the backend's DB_HOST is set to: the pooler Service's DNS name, or PostgreSQL's host when
   * `backend.route` is `direct`.
   */
  readonly dbHost: pulumi.Output<string>;
  /** Port the backend's DB_PORT is set to (the pooler's client port, or PostgreSQL's when `direct`). */
  readonly dbPort: pulumi.Output<number>;
  /** `backend.route`: `pgbouncer` or `direct`. */
  readonly dbRoute: string;
  /**
   * The backend's objects the switch patches: `{namespace, configMapName, deploymentName}`. The next update
   * reads it back (with `dbRoute`) to refuse a rename while routed.
   */
  readonly backendObjects: BackendObjects;
  /**
   * The libpq `sslmode` the backend connects to dbHost with: `verify-full` against the pooler's CA when the
   * pooler serves TLS, and, on the direct route, the `server_tls_sslmode` PgBouncer itself uses.
   */
  readonly sslMode: string;
  /** Where the CA for `sslMode` lives in the cluster (`{kind, name, key}`); absent when nothing is verified. */
  readonly caRef?: CaRef;
  /** That CA's PEM, when the program knows it (a Vault PKI certificate, a Vault-held server CA). */
  readonly caBundle?: pulumi.Output<string>;
  /**
   * `postgres://user:password@dbHost:dbPort/database`, a secret (read it with `getSecretOutput`). The login is
   * the application's, from Vault. Absent (with a warning at `pulumi up`) when Vault holds a SCRAM verifier
   * or md5 hash instead of the password, or in `credentials.authQuery` mode.
   */
  readonly connectionUrl?: pulumi.Output<string>;
  /** The exporter's `http://<pooler host>:<metrics port>/metrics`, whatever the route. */
  readonly metricsEndpoint: pulumi.Output<string>;
  /** The Grafana dashboard's URL; absent when `monitoring.dashboard` is false. */
  readonly dashboardUrl?: pulumi.Output<string | undefined>;
  /**
   * The `scrape_configs` entry to add to a plain Prometheus (`monitoring.mode: plain`); absent when
   * prometheus-operator scrapes through the PodMonitor.
   */
  readonly scrapeJob?: pulumi.Output<Record<string, unknown> | undefined>;
  /**
   * The rules ConfigMap's name in the pooler's namespace (`monitoring.mode: plain`): a fixed name, labelled
   * `monitoring.rulesConfigMapLabels`, for a plain Prometheus to load; absent with prometheus-operator.
   */
  readonly rulesConfigMap?: pulumi.Output<string | undefined>;
  /** Namespace of the pooler. */
  readonly namespace: string;
  /** Port of the exporter's /metrics on the same Service. */
  readonly metricsPort: pulumi.Output<number>;
}

export interface DeployOptions {
  /** The settings that came from Pulumi secrets and go into resources as secrets. @default none */
  readonly secretInputs?: SecretInputs;
  /** The environment the providers' tokens come from (`GRAFANA_AUTH`). @default process.env */
  readonly env?: ShellEnv;
  /**
   * What the stack's last update exported (its route and backend objects): a rename while routed is refused.
   * @default nothing known: no rename is refused
   */
  readonly lastRoute?: LastRoute;
  /**
   * The stack's pinned cluster, read with its context's credentials (stacks/program.ts checked the shell):
   * the objects the stack names but does not own are checked there before anything is registered.
   * @default none: nothing is read from the cluster before registration
   */
  readonly cluster?: ClusterReader;
}

/** What the stack reads before registering anything besides its credentials. */
interface References {
  /** A Vault-held server CA's PEM. */
  readonly serverCaPem?: string;
  readonly problems: readonly PreflightProblem[];
}

/**
 * Reads what the stack names but does not own (the preflight): a Vault-held server CA and the PKI role,
 * through the stack's Vault provider; the pooler's and the backend's objects, in its cluster. Every problem is
 * collected, none thrown.
 */
async function readReferences(
  settings: StackSettings,
  v: PinnedVault,
  vaultAnswered: Promise<boolean>,
  cluster: ClusterReader | undefined,
): Promise<References> {
  const ca = settings.tls.serverCa;
  const cert = settings.tls.certificate;
  const vaultReads = async () =>
    (await vaultAnswered)
      ? Promise.all([
          ca?.source === "vault" ? readServerCa(ca, v, key) : undefined,
          cert?.source === "vault-pki" ? checkPkiRole(cert, v, key) : [],
        ])
      : ([undefined, []] as const);
  const [[caRead, pki], objects] = await Promise.all([
    vaultReads(),
    cluster === undefined
      ? []
      : checkClusterObjects(
          cluster,
          [...poolerReferences(settings), ...backendReferences(settings.backend, settings.namespace)],
          key,
        ),
  ]);
  return {
    ...(caRead !== undefined && "pem" in caRead ? { serverCaPem: caRead.pem } : {}),
    problems: [...(caRead !== undefined && "problem" in caRead ? [caRead.problem] : []), ...pki, ...objects],
  };
}

/**
 * Errors thrown together as one: a bug as it is, else one user error listing each refusal, its lines
 * indented under it (the CLI prints a message's lines below its `error:` as they are).
 */
function oneRefusal(errors: readonly unknown[]): unknown {
  const bug = errors.find((e) => !(e instanceof UserError));
  if (bug !== undefined || errors.length === 1) return bug ?? errors[0];
  const listed = errors.map((e) =>
    (e as UserError).message
      .split("\n")
      .map((line, i) => `${i === 0 ? "  - " : "    "}${line}`)
      .join("\n"),
  );
  return new UserError(
    `the stack cannot be deployed as it is (${errors.length} refusals):\n${listed.join("\n")}`,
  );
}

/**
 * What one environment deploys, through the stack's own providers (pinned to its cluster, Vault and
 * Grafana). Credentials are read (and checked) from Vault before anything but the Vault provider is
 * registered, so a bad Vault value leaves nothing half-deployed.
 */
export async function deployEnvironment(
  settings: StackSettings,
  opts: DeployOptions = {},
): Promise<EnvironmentOutputs> {
  const sizing = poolSizingWarning(settings, { pool: key("pool"), database: key("database") });
  if (sizing) void pulumi.log.warn(sizing);
  // The Vault provider alone before the reads: a refused read leaves nothing else registered.
  const vault = vaultProvider(settings.providers);
  const pinnedVault = { provider: vault, address: settings.providers.vaultAddress };
  const credentialsRead = loadPoolerCredentials(
    settings.credentials,
    { statsUser: settings.exporter.statsUser, pgbouncerPort: settings.workload.port },
    pinnedVault,
  );
  // The other Vault reads wait for the credentials' read, and are left out when the provider could not set
  // up its client (Vault unreachable, a bad token): it sets it up under a lock, one request at a time, so
  // each read would wait out its own round of retries for the same refusal.
  const vaultAnswered = credentialsRead.then(
    () => true,
    (e: unknown) => !vaultClientFailed(e instanceof Error ? e.message : String(e)),
  );
  const [credentials, references] = await Promise.allSettled([
    credentialsRead,
    readReferences(settings, pinnedVault, vaultAnswered, opts.cluster),
  ]);
  const rename = renameWhileRouted(opts.lastRoute ?? {}, settings.backend, settings.namespace, key);
  // One message for everything refused: a rename while routed, the credentials, the referenced objects.
  if (
    rename !== undefined ||
    credentials.status === "rejected" ||
    references.status === "rejected" ||
    references.value.problems.length > 0
  ) {
    throw oneRefusal([
      ...(rename !== undefined ? [rename] : []),
      ...(credentials.status === "rejected" ? [credentials.reason as unknown] : []),
      ...(references.status === "rejected"
        ? [references.reason as unknown]
        : references.value.problems.length > 0
          ? [new PreflightError(references.value.problems)]
          : []),
    ]);
  }
  const kubernetes = kubernetesProvider(settings.providers);
  const grafana = settings.monitoring.dashboard
    ? grafanaProvider(settings.providers, { env: opts.env ?? process.env })
    : undefined;
  const { appLogin } = credentials.value;
  if ("unavailable" in appLogin) {
    void pulumi.log.warn(`stack output connectionUrl left out: ${appLogin.unavailable}`);
  }
  const pooler = new PgBouncer(
    "pgbouncer",
    {
      namespace: settings.namespace,
      workload: settings.workload,
      pool: settings.pool,
      database: settings.database,
      exporter: settings.exporter,
      network: settings.network,
      tls: settings.tls,
      credentials: credentials.value,
      podAnnotations: scrapeAnnotations(settings.monitoring, settings.exporter.port),
      secretInputs: opts.secretInputs ?? new SecretInputs(),
      ...(references.value.serverCaPem !== undefined ? { serverCaPem: references.value.serverCaPem } : {}),
    },
    { providers: [kubernetes, vault] },
  );
  const monitoring = new PgBouncerMonitoring(
    "pgbouncer-monitoring",
    {
      namespace: settings.namespace,
      pool: settings.pool,
      monitoring: settings.monitoring,
      podSelector: pooler.podSelector,
      metricsPortNames: pooler.metricsPortNames,
      // Only a certificate the program issued has an expiry it knows (Vault PKI).
      ...(pooler.certificate?.expiresAt && settings.tls.certificate?.source === "vault-pki"
        ? {
            certificate: {
              expiresAt: pooler.certificate.expiresAt,
              renewBeforeSeconds: settings.tls.certificate.renewBeforeSeconds,
              subject: pooler.host,
            },
          }
        : {}),
    },
    { providers: [kubernetes, ...(grafana ? [grafana] : [])] },
  );
  const backend = new BackendRoute(
    "backend",
    {
      settings: settings.backend,
      defaultNamespace: settings.namespace,
      pooler: { host: pooler.host, port: pooler.port },
      database: { host: settings.database.host, port: settings.database.port },
      // Everything else first: the switch waits for the whole pooler and its alerts, and a `pulumi destroy`
      // that the protected patches refuse (route pgbouncer) deletes nothing, as every object is deleted after them.
      poolerReady: [pooler, monitoring],
    },
    { providers: [kubernetes] },
  );
  const tls = backendTls(settings.backend.route, settings.tls, pooler);
  return {
    dbHost: backend.host,
    dbPort: backend.port,
    dbRoute: backend.route,
    backendObjects: backendObjects(settings.backend, settings.namespace),
    sslMode: tls.sslMode,
    ...(tls.caRef ? { caRef: tls.caRef } : {}),
    ...(tls.caBundle ? { caBundle: tls.caBundle } : {}),
    ...("login" in appLogin
      ? {
          connectionUrl: pulumi.secret(
            pulumi
              .all([appLogin.login, backend.host, backend.port])
              .apply(([login, host, port]) => connectionUrl(login, { host, port }, settings.database.name)),
          ),
        }
      : {}),
    metricsEndpoint: pulumi.all([pooler.host, pooler.metricsPort]).apply(([h, p]) => metricsEndpoint(h, p)),
    ...(settings.monitoring.dashboard ? { dashboardUrl: monitoring.dashboardUrl } : {}),
    ...(settings.monitoring.mode === "plain"
      ? { scrapeJob: monitoring.scrapeJob, rulesConfigMap: monitoring.rulesConfigMap }
      : {}),
    namespace: settings.namespace,
    metricsPort: pooler.metricsPort,
  };
}
