/**
 * The guardrails every `pulumi preview` and `pulumi up` runs (`--policy-pack policy`). Each check is a plain
 * function over Kubernetes objects as JSON, exported so that tests call it with passing and failing objects
 * and run it over the resources the offline engine records for each stack.
 */
import type {
  ReportViolation,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
// The pack imports the concerns through their pure barrels (components/<concern>/index.ts), never their
// resources: loading the Pulumi components would load the Kubernetes provider's SDK, the Vault provider's
// and the Grafana one too (6 s more per preview when the CLI type-checked them, measured through the
// analyzer test). test/unit/policy-imports.test.ts keeps it so.
import { IssueList, readSection } from "../components/common";
import { parseAuthFile, secretKind } from "../components/credentials";
import {
  CLIENT_SSL_MODES,
  type ClientSslMode,
  DATABASE,
  PROD_MIN_CLIENT_SSL_MODE,
  PROD_MIN_SERVER_SSL_MODE,
  SERVER_SSL_MODES,
  type ServerSslMode,
  atLeast,
  iniParameter,
  poolBudget,
} from "../components/pgbouncer";
import { PROJECT_DIR, key, rawStackConfig, stackFileConfig } from "../stacks/stack-file";
import {
  type PolicyInputResource,
  at,
  containersOf,
  checkLoginsOf,
  isPgBouncerContainer,
  isSecretMarker,
  metadataOf,
  pgBouncerWorkloads,
  workloadName,
  workloads,
  plain,
  podSpecOf,
  stackOfUrn,
} from "./resources";

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call -- Kubernetes objects arrive as untyped JSON (CrossGuard props, offline records); every read goes through plain()/at() */

/** Reports one violation, naming the resource it is about. */
export type { PolicyInputResource };
export type Report = (message: string, urn?: string) => void;

// ---------------------------------------------------------------------------------------------------------
// 1. The pool budget fits PostgreSQL's connections.

/** PostgreSQL's limits, as the stack's `database` settings give them. */
export interface PostgresLimits {
  readonly maxConnections: number;
  readonly reservedConnections: number;
}

/** `database.maxConnections`/`reservedConnections` of `Pulumi.<stack>.yaml`, validated like the program does. */
export function postgresLimitsFromStackFile(stack: string, dir: string = PROJECT_DIR): PostgresLimits {
  const raw = rawStackConfig(stackFileConfig(stack, dir));
  const issues = new IssueList();
  const db = readSection(DATABASE, key("database"), raw.database, issues);
  issues.throwIfAny();
  return { maxConnections: db.maxConnections, reservedConnections: db.reservedConnections };
}

/**
 * Pods a rolling update runs beside the replicas: a Deployment's maxSurge as a pod count (Kubernetes' default
 * is 25%, rounded up); none for a StatefulSet, which replaces a pod only once it has gone.
 */
export function surgePods(deployment: PolicyInputResource, replicas: number): number {
  if (deployment.type === "kubernetes:apps/v1:StatefulSet") return 0;
  const strategy = at(deployment.props, ["spec", "strategy"]);
  if (plain(strategy?.type) === "Recreate") return 0;
  const surge = plain(at(deployment.props, ["spec", "strategy", "rollingUpdate", "maxSurge"])) ?? "25%";
  if (typeof surge === "number") return surge;
  const pct = /^(\d+)%$/.exec(String(surge));
  return pct ? Math.ceil((replicas * Number(pct[1])) / 100) : Number(surge);
}

/**
 * The text under a key matching `key` in the ConfigMap or Secret (`kind`) that a workload's volumes name.
 * In a preview the auto-generated name may still be unknown: one candidate is then unambiguous.
 */
function mountedText(
  deployment: PolicyInputResource,
  resources: readonly PolicyInputResource[],
  kind: "ConfigMap" | "Secret",
  key: RegExp,
): string | undefined {
  const volumes: any[] = (plain(podSpecOf(deployment)?.volumes) ?? []).map(plain);
  const names = new Set(
    volumes
      .map((v) =>
        kind === "ConfigMap" ? plain(plain(v?.configMap)?.name) : plain(plain(v?.secret)?.secretName),
      )
      .filter((n) => n !== undefined),
  );
  const textOf = (r: PolicyInputResource): string | undefined => {
    for (const field of ["stringData", "data"]) {
      const data = plain(at(r.props, [field])) ?? {};
      const k = Object.keys(data).find((x) => key.test(x));
      const text = k === undefined ? undefined : plain(data[k]);
      if (typeof text !== "string") continue;
      // A Secret's `data` is base64, a ConfigMap's is text.
      return kind === "Secret" && field === "data" ? Buffer.from(text, "base64").toString("utf8") : text;
    }
    return undefined;
  };
  const withText = resources.filter(
    (r) => r.type === `kubernetes:core/v1:${kind}` && textOf(r) !== undefined,
  );
  const mounted = withText.filter((r) => names.has(metadataOf(r).name));
  const found = mounted.length === 1 ? mounted : withText.length === 1 ? withText : [];
  return found.length === 1 ? textOf(found[0]) : undefined;
}

/** The pgbouncer.ini a PgBouncer workload mounts (the shared one every process of every pod runs). */
function mountedIni(
  deployment: PolicyInputResource,
  resources: readonly PolicyInputResource[],
): string | undefined {
  return mountedText(deployment, resources, "ConfigMap", /^pgbouncer\.ini$/);
}

/**
 * Every PgBouncer workload's peak server connections, read from what is deployed (replicas, maxSurge,
 * PgBouncer containers per pod, `max_db_connections` of the mounted ini), must fit PostgreSQL's
 * `max_connections` minus the reserve, by the same `poolBudget` the program's settings check uses.
 */
export function checkPoolBudget(
  resources: readonly PolicyInputResource[],
  limits: PostgresLimits,
  report: Report,
): void {
  for (const d of pgBouncerWorkloads(resources)) {
    const name = workloadName(d);
    const ini = mountedIni(d, resources);
    const cap = ini === undefined ? undefined : iniParameter(ini, "pgbouncer", "max_db_connections");
    if (cap === undefined || !/^\d+$/.test(cap) || Number(cap) === 0) {
      report(
        `${name}: its pgbouncer.ini ${ini === undefined ? "was not found" : "sets no max_db_connections"}; ` +
          `without a per-process server cap PostgreSQL's connections are unbounded`,
        d.urn,
      );
      continue;
    }
    const replicas = plain(at(d.props, ["spec", "replicas"])) ?? 1;
    const pgbouncers = containersOf(podSpecOf(d)).filter(isPgBouncerContainer);
    const budget = poolBudget({
      replicas,
      surge: surgePods(d, replicas),
      processesPerPod: pgbouncers.length,
      serverCapPerProcess: Number(cap),
      checkLoginsPerProcess: Math.max(0, ...pgbouncers.map(checkLoginsOf)),
      postgresMaxConnections: limits.maxConnections,
      postgresReservedConnections: limits.reservedConnections,
    });
    if (!budget.fits) {
      report(`${name}: the pool budget does not fit PostgreSQL: ${budget.arithmetic}`, d.urn);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// 2. The restricted Pod Security Standard.

const RESTRICTED_VOLUMES = new Set([
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "persistentVolumeClaim",
  "projected",
  "secret",
]);
const ALLOWED_SECCOMP = new Set(["RuntimeDefault", "Localhost"]);

/**
 * The restricted profile of the Pod Security Standards (kubernetes.io/docs/concepts/security/pod-security-standards),
 * for every pod this stack creates: no host namespaces, ports or paths, only the restricted volume types, no
 * privileged container, no privilege escalation, non-root (and never uid 0), every capability dropped (only
 * NET_BIND_SERVICE may be added back), a RuntimeDefault or Localhost seccomp profile, default /proc mount.
 * Not checked: AppArmor and SELinux options, and sysctls (this program sets none of them).
 */
export function checkRestrictedPod(r: PolicyInputResource, report: Report): void {
  const spec = podSpecOf(r);
  if (!spec) return;
  const what = `${r.type.split(":").pop()} ${metadataOf(r).name ?? r.name}`;
  const bad = (msg: string) => report(`${what}: ${msg} (restricted Pod Security Standard)`, r.urn);
  for (const k of ["hostNetwork", "hostPID", "hostIPC"]) if (plain(spec[k]) === true) bad(`${k} is true`);
  for (const v of (plain(spec.volumes) ?? []).map(plain)) {
    const type = Object.keys(v ?? {}).find((k) => k !== "name");
    if (type !== undefined && !RESTRICTED_VOLUMES.has(type))
      bad(`volume ${plain(v.name)} is of type ${type}`);
  }
  const podSc = plain(spec.securityContext) ?? {};
  const podNonRoot = plain(podSc.runAsNonRoot);
  const podSeccomp = plain(plain(podSc.seccompProfile)?.type);
  if (plain(podSc.runAsUser) === 0) bad("the pod runs as uid 0");
  if (podSeccomp !== undefined && !ALLOWED_SECCOMP.has(podSeccomp))
    bad(`the pod's seccomp profile is ${podSeccomp}`);
  const containers = containersOf(spec);
  if (containers.length === 0) bad("has no containers");
  for (const c of containers) {
    const name = `container ${plain(c.name)}`;
    const sc = plain(c.securityContext) ?? {};
    if (plain(sc.privileged) === true) bad(`${name} is privileged`);
    if (plain(sc.allowPrivilegeEscalation) !== false)
      bad(`${name} does not set allowPrivilegeEscalation: false`);
    const nonRoot = plain(sc.runAsNonRoot) ?? podNonRoot;
    if (nonRoot !== true) bad(`${name} does not set runAsNonRoot: true (nor does the pod)`);
    if (plain(sc.runAsUser) === 0) bad(`${name} runs as uid 0`);
    const seccomp = plain(plain(sc.seccompProfile)?.type) ?? podSeccomp;
    if (seccomp === undefined || !ALLOWED_SECCOMP.has(seccomp)) {
      bad(`${name} has seccomp profile ${seccomp ?? "unset"}; must be RuntimeDefault or Localhost`);
    }
    const caps = plain(sc.capabilities) ?? {};
    const drop: string[] = (plain(caps.drop) ?? []).map(plain);
    if (!drop.includes("ALL")) bad(`${name} does not drop ALL capabilities`);
    for (const add of (plain(caps.add) ?? []).map(plain)) {
      if (add !== "NET_BIND_SERVICE") bad(`${name} adds capability ${add}`);
    }
    if (plain(sc.procMount) !== undefined && plain(sc.procMount) !== "Default") bad(`${name} sets procMount`);
    for (const p of (plain(c.ports) ?? []).map(plain)) {
      if ((plain(p.hostPort) ?? 0) !== 0) bad(`${name} uses hostPort ${plain(p.hostPort)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// 3. No plaintext secret in any resource.

/** Environment variable names that carry a credential. */
const SENSITIVE_ENV =
  /(PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|CONNECTION_?STRING|DATABASE_URL|_DSN$)/i;
/** Text that is a credential wherever it appears. */
const CREDENTIAL_TEXT: readonly [RegExp, string][] = [
  [/[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i, "a URL with a password"],
  [/SCRAM-SHA-256\$\d+:/, "a SCRAM-SHA-256 verifier"],
  [/\bmd5[0-9a-f]{32}\b/, "an md5 password hash"],
  [/(^|[\s;])password\s*=\s*\S/im, "a password= setting"],
];

function isSecretResource(type: string): boolean {
  return type === "kubernetes:core/v1:Secret" || type === "kubernetes:core/v1:SecretPatch";
}

/** Walks `value`, calling `visit` with each plain string and its path; values under a secret marker are skipped. */
function walkStrings(value: any, path: string, visit: (s: string, path: string) => void): void {
  if (isSecretMarker(value)) return;
  if (typeof value === "string") visit(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => walkStrings(v, `${path}[${i}]`, visit));
  else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) walkStrings(v, path ? `${path}.${k}` : k, visit);
  }
}

export interface PlaintextOptions {
  /**
   * Whether Pulumi's secret markers are visible in `props`. The offline engine's records keep them, so a
   * Secret's values can be required to be secrets; CrossGuard hands policies plaintext (markers removed), so
   * in `pulumi preview` the content checks below are all that can be done. @default false
   */
  readonly markersVisible?: boolean;
}

/**
 * No credential in plain sight: no container env var with a credential-like name set to a literal (it must
 * come `valueFrom` a Secret), no credential-looking text (a URL with a password, a SCRAM verifier, an md5
 * hash, `password=`) anywhere but in a Secret, and, where markers are visible, every value of a Secret a
 * Pulumi secret.
 */
export function checkNoPlaintextSecrets(
  r: PolicyInputResource,
  report: Report,
  opts: PlaintextOptions = {},
): void {
  const what = `${r.type.split(":").pop()} ${metadataOf(r).name ?? r.name}`;
  const secretResource = isSecretResource(r.type);
  const spec = podSpecOf(r) ?? at(r.props, ["spec", "template", "spec"]);
  for (const c of containersOf(spec)) {
    for (const e of (plain(c.env) ?? []).map(plain)) {
      const value = e?.value;
      if (
        SENSITIVE_ENV.test(String(plain(e?.name))) &&
        value !== undefined &&
        value !== "" &&
        !isSecretMarker(value)
      ) {
        report(
          `${what}: container ${plain(c.name)} sets ${plain(e.name)} to a literal; use valueFrom.secretKeyRef`,
          r.urn,
        );
      }
    }
  }
  walkStrings(r.props, "", (s, path) => {
    if (secretResource && /^(data|stringData)\./.test(path)) return;
    for (const [pattern, kind] of CREDENTIAL_TEXT) {
      if (pattern.test(s)) report(`${what}: ${path} holds ${kind} in plaintext; put it in a Secret`, r.urn);
    }
  });
  if (secretResource && opts.markersVisible) {
    for (const field of ["data", "stringData"]) {
      const m = r.props[field];
      if (m === undefined || isSecretMarker(m)) continue;
      for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
        if (!isSecretMarker(v)) report(`${what}: ${field}.${k} is not a Pulumi secret`, r.urn);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// 4. Production availability.

/** The stacks held to the production rules. */
export const PRODUCTION_STACKS: readonly string[] = ["prod"];
export const MIN_PROD_REPLICAS = 2;

function selects(selector: any, labels: Record<string, string>): boolean {
  const match = plain(plain(selector)?.matchLabels) ?? {};
  const entries = Object.entries(match);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === plain(v));
}

/**
 * In production every Deployment and StatefulSet this stack creates keeps at least two replicas and is covered by a
 * PodDisruptionBudget that selects its pods and lets fewer than all of them go at once.
 */
export function checkProductionAvailability(resources: readonly PolicyInputResource[], report: Report): void {
  const pdbs = resources.filter((r) => r.type === "kubernetes:policy/v1:PodDisruptionBudget");
  for (const d of workloads(resources)) {
    const name = workloadName(d);
    const ns = metadataOf(d).namespace;
    const replicas = plain(at(d.props, ["spec", "replicas"])) ?? 1;
    if (replicas < MIN_PROD_REPLICAS) {
      report(`${name}: ${replicas} replica(s) in production; at least ${MIN_PROD_REPLICAS}`, d.urn);
    }
    const labels: Record<string, string> =
      plain(at(d.props, ["spec", "template", "metadata", "labels"])) ?? {};
    const covering = pdbs.filter(
      (p) => metadataOf(p).namespace === ns && selects(at(p.props, ["spec", "selector"]), labels),
    );
    if (covering.length === 0) {
      report(`${name}: no PodDisruptionBudget selects its pods in production`, d.urn);
      continue;
    }
    for (const p of covering) {
      const minAvailable = plain(at(p.props, ["spec", "minAvailable"]));
      const maxUnavailable = plain(at(p.props, ["spec", "maxUnavailable"]));
      if (maxUnavailable === 0 || (typeof minAvailable === "number" && minAvailable >= replicas)) {
        report(
          `PodDisruptionBudget ${metadataOf(p).name ?? p.name} never lets a pod of ${name} go; node drains would stall`,
          p.urn,
        );
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// 5. In production, no topology spread that can strand a replica.

/** The defaults the API server gives a spread constraint's unset fields. */
const SPREAD_DEFAULTS = {
  whenUnsatisfiable: "DoNotSchedule",
  nodeTaintsPolicy: "Ignore",
  nodeAffinityPolicy: "Honor",
};

/**
 * A hard spread (`whenUnsatisfiable: DoNotSchedule`) must count only nodes the pod can use: with
 * `nodeTaintsPolicy: Ignore` (the default) cordoned and tainted nodes count as empty domains, and with
 * `nodeAffinityPolicy: Ignore` so do nodes the pod's node selector or affinity excludes. Either way a pod
 * that a drain evicts next to a cordoned node can stay Pending, the PodDisruptionBudget then allows no more
 * disruptions, and the workload runs short of a replica until a node comes back (docs/runbook.md,
 * "Maintenance"). A soft spread (`ScheduleAnyway`) never keeps a pod Pending and is not checked.
 */
export function checkSpreadCannotStrand(r: PolicyInputResource, report: Report): void {
  const spec = podSpecOf(r);
  if (!spec) return;
  const what = `${r.type.split(":").pop()} ${metadataOf(r).name ?? r.name}`;
  for (const c of (plain(spec.topologySpreadConstraints) ?? []).map(plain)) {
    const when = plain(c?.whenUnsatisfiable) ?? SPREAD_DEFAULTS.whenUnsatisfiable;
    if (when !== "DoNotSchedule") continue;
    const hard = `the DoNotSchedule spread over ${plain(c?.topologyKey)}`;
    const taints = plain(c?.nodeTaintsPolicy);
    if ((taints ?? SPREAD_DEFAULTS.nodeTaintsPolicy) !== "Honor") {
      report(
        `${what}: ${hard} has nodeTaintsPolicy ${taints ?? `unset (${SPREAD_DEFAULTS.nodeTaintsPolicy})`}, so ` +
          `cordoned and tainted nodes count as empty domains and a pod a node drain evicts can stay Pending; ` +
          `set nodeTaintsPolicy: Honor, or whenUnsatisfiable: ScheduleAnyway`,
        r.urn,
      );
    }
    const affinity = plain(c?.nodeAffinityPolicy) ?? SPREAD_DEFAULTS.nodeAffinityPolicy;
    if (affinity !== "Honor") {
      report(
        `${what}: ${hard} has nodeAffinityPolicy ${affinity}, so nodes the pod may not use count as empty ` +
          `domains and a pod a node drain evicts can stay Pending; set nodeAffinityPolicy: Honor (the default)`,
        r.urn,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// 6. In production, PgBouncer logs in to PostgreSQL without a client's SCRAM proof.

/** The auth file's name in the Secret the PgBouncer containers mount. */
export const AUTH_FILE_KEY = /^userlist\.txt$/;

/**
 * No user that PgBouncer logs in to PostgreSQL as (everyone in the auth file but the console-only
 * `stats_users` and `admin_users` of the ini) has a SCRAM verifier in the auth file. With a verifier,
 * PgBouncer 1.25.2 can log in to PostgreSQL only with the keys of a client's finished SCRAM login on the
 * same process: one wrong password as the first login after a start locks every later login out until
 * PgBouncer restarts (`credentials.authFileSecret: verifier`; docs/runbook.md, "Authentication failures").
 * An auth file the policy cannot read is reported too: it cannot tell.
 */
export function checkServerLoginNeedsNoClientProof(
  resources: readonly PolicyInputResource[],
  report: Report,
): void {
  for (const d of pgBouncerWorkloads(resources)) {
    const name = workloadName(d);
    const authFile = mountedText(d, resources, "Secret", AUTH_FILE_KEY);
    const ini = mountedIni(d, resources);
    if (authFile === undefined || ini === undefined) {
      report(
        `${name}: its ${authFile === undefined ? "auth file (Secret key userlist.txt)" : "pgbouncer.ini"} ` +
          `could not be read, so whether PgBouncer's server login needs a client's SCRAM keys cannot be told`,
        d.urn,
      );
      continue;
    }
    const consoleOnly = new Set(
      ["stats_users", "admin_users"].flatMap((p) =>
        (iniParameter(ini, "pgbouncer", p) ?? "").split(",").map((u) => u.trim()),
      ),
    );
    for (const [user, secret] of parseAuthFile(authFile)) {
      if (consoleOnly.has(user) || secretKind(secret) !== "scram-verifier") continue;
      report(
        `${name}: the auth file holds a SCRAM verifier for ${user}, so PgBouncer can log in to ` +
          `PostgreSQL as ${user} only with the keys of a client's finished SCRAM login: one wrong password ` +
          `as the first login after a start locks every later login out until PgBouncer restarts. Set ` +
          `credentials.authFileSecret: password (the default) and store the password in Vault`,
        d.urn,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// 7. In production, TLS on both legs: clients must use it, and PostgreSQL is verified.

/**
 * Every PgBouncer workload's mounted ini asks clients for TLS (`client_tls_sslmode` at least
 * `require`) and verifies PostgreSQL's certificate (`server_tls_sslmode` at least `verify-ca`). PgBouncer's
 * own defaults (`disable`, `prefer`) count when a line is absent. An ini the policy cannot read is reported.
 */
export function checkTlsBothLegs(resources: readonly PolicyInputResource[], report: Report): void {
  for (const d of pgBouncerWorkloads(resources)) {
    const name = workloadName(d);
    const ini = mountedIni(d, resources);
    if (ini === undefined) {
      report(`${name}: its pgbouncer.ini could not be read, so its TLS cannot be told`, d.urn);
      continue;
    }
    const client = (iniParameter(ini, "pgbouncer", "client_tls_sslmode") ?? "disable") as ClientSslMode;
    const server = (iniParameter(ini, "pgbouncer", "server_tls_sslmode") ?? "prefer") as ServerSslMode;
    if (!CLIENT_SSL_MODES.includes(client) || !atLeast(CLIENT_SSL_MODES, client, PROD_MIN_CLIENT_SSL_MODE)) {
      report(
        `${name}: client_tls_sslmode is ${client}; production needs ${PROD_MIN_CLIENT_SSL_MODE}, ` +
          `or the application's password crosses the pod network in the clear (tls.clientSslMode)`,
        d.urn,
      );
    }
    if (!SERVER_SSL_MODES.includes(server) || !atLeast(SERVER_SSL_MODES, server, PROD_MIN_SERVER_SSL_MODE)) {
      report(
        `${name}: server_tls_sslmode is ${server}; production needs ${PROD_MIN_SERVER_SSL_MODE} or ` +
          `verify-full, or whoever answers for the database's address gets the server logins ` +
          `(tls.serverSslMode and tls.serverCa)`,
        d.urn,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// 8. In production, images pinned by digest (advisory).

/** Each container of a Deployment or StatefulSet whose image has a tag but no `@sha256:` digest. */
export function checkImagesByDigest(r: PolicyInputResource, report: Report): void {
  if (workloads([r]).length === 0) return;
  for (const c of containersOf(podSpecOf(r))) {
    const image = plain(c?.image);
    if (typeof image !== "string" || /@sha256:[a-f0-9]{64}$/.test(image)) continue;
    report(
      `${workloadName(r)}: container ${plain(c.name)} runs ${image}, pinned by tag only; ` +
        `a tag can be moved. Set pgbouncer.digest / exporter.digest to the digest your registry serves`,
      r.urn,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// The policies.

function fromStack(args: StackValidationArgs): PolicyInputResource[] {
  return args.resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: r.props }));
}

function stackName(resources: readonly PolicyInputResource[]): string | undefined {
  return resources.map((r) => stackOfUrn(r.urn)).find((s) => s !== undefined);
}

export interface PoolBudgetConfig {
  /** Overrides `database.maxConnections` of the stack file. */
  readonly postgresMaxConnections?: number;
  /** Overrides `database.reservedConnections` of the stack file. */
  readonly postgresReservedConnections?: number;
}

/** PostgreSQL's limits: the policy config where set, else the stack file of the stack being previewed. */
export function resolveLimits(config: PoolBudgetConfig, stack: string | undefined): PostgresLimits {
  const { postgresMaxConnections: max, postgresReservedConnections: reserved } = config;
  if (max !== undefined && reserved !== undefined)
    return { maxConnections: max, reservedConnections: reserved };
  if (stack === undefined) throw new Error("no resource URN names the stack");
  const file = postgresLimitsFromStackFile(stack);
  return {
    maxConnections: max ?? file.maxConnections,
    reservedConnections: reserved ?? file.reservedConnections,
  };
}

export const poolBudgetPolicy: StackValidationPolicy = {
  name: "pool-budget-fits-postgres",
  description:
    "PgBouncer's peak server connections ((replicas + surge) x processes x max_db_connections) fit " +
    "PostgreSQL's max_connections minus the reserve.",
  enforcementLevel: "mandatory",
  configSchema: {
    properties: {
      postgresMaxConnections: { type: "integer", minimum: 1 },
      postgresReservedConnections: { type: "integer", minimum: 0 },
    },
  },
  validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
    const resources = fromStack(args);
    if (pgBouncerWorkloads(resources).length === 0) return;
    let limits: PostgresLimits;
    try {
      limits = resolveLimits(args.getConfig<PoolBudgetConfig>(), stackName(resources));
    } catch (e) {
      reportViolation(
        `PostgreSQL's limits could not be read (${e instanceof Error ? e.message : String(e)}); set ` +
          `postgresMaxConnections and postgresReservedConnections in the policy config`,
      );
      return;
    }
    checkPoolBudget(resources, limits, reportViolation);
  },
};

export const restrictedPodSecurityPolicy: ResourceValidationPolicy = {
  name: "restricted-pod-security",
  description: "Every pod this stack creates meets the restricted Pod Security Standard.",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) =>
    checkRestrictedPod(
      { type: args.type, name: args.name, urn: args.urn, props: args.props },
      reportViolation,
    ),
};

export const noPlaintextSecretsPolicy: ResourceValidationPolicy = {
  name: "no-plaintext-secrets",
  description:
    "No credential in plaintext: credential env vars come from Secrets, and no resource but a Secret holds " +
    "a password URL, a SCRAM verifier, an md5 hash or a password= setting.",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) =>
    checkNoPlaintextSecrets(
      { type: args.type, name: args.name, urn: args.urn, props: args.props },
      reportViolation,
    ),
};

/** Whether the stack these resources belong to (by their URNs) is held to the production rules. */
export function isProductionStack(resources: readonly PolicyInputResource[]): boolean {
  const stack = stackName(resources);
  return stack !== undefined && PRODUCTION_STACKS.includes(stack);
}

export const productionAvailabilityPolicy: StackValidationPolicy = {
  name: "prod-replicas-and-pdb",
  description: `In production (${PRODUCTION_STACKS.join(", ")}), every Deployment and StatefulSet has >= ${MIN_PROD_REPLICAS} replicas and a PodDisruptionBudget.`,
  enforcementLevel: "mandatory",
  validateStack: (args, reportViolation) => {
    const resources = fromStack(args);
    if (!isProductionStack(resources)) return;
    checkProductionAvailability(resources, reportViolation);
  },
};

export const productionSpreadPolicy: StackValidationPolicy = {
  name: "prod-spread-cannot-strand",
  description:
    `In production (${PRODUCTION_STACKS.join(", ")}), a DoNotSchedule topology spread counts only nodes ` +
    "the pod can use (nodeTaintsPolicy and nodeAffinityPolicy Honor), so a node drain cannot strand a replica.",
  enforcementLevel: "mandatory",
  validateStack: (args, reportViolation) => {
    const resources = fromStack(args);
    if (!isProductionStack(resources)) return;
    for (const r of resources) checkSpreadCannotStrand(r, reportViolation);
  },
};

export const productionServerLoginPolicy: StackValidationPolicy = {
  name: "prod-server-login-without-client-proof",
  description:
    `In production (${PRODUCTION_STACKS.join(", ")}), PgBouncer's auth file holds no SCRAM verifier for a ` +
    "user it logs in to PostgreSQL as, so that no client login can lock the pooler out.",
  enforcementLevel: "mandatory",
  validateStack: (args, reportViolation) => {
    const resources = fromStack(args);
    if (!isProductionStack(resources)) return;
    checkServerLoginNeedsNoClientProof(resources, reportViolation);
  },
};

export const productionTlsPolicy: StackValidationPolicy = {
  name: "prod-tls-both-legs",
  description:
    `In production (${PRODUCTION_STACKS.join(", ")}), PgBouncer requires TLS from clients ` +
    `(${PROD_MIN_CLIENT_SSL_MODE}) and verifies PostgreSQL's certificate (${PROD_MIN_SERVER_SSL_MODE} or more).`,
  enforcementLevel: "mandatory",
  validateStack: (args, reportViolation) => {
    const resources = fromStack(args);
    if (!isProductionStack(resources)) return;
    checkTlsBothLegs(resources, reportViolation);
  },
};

export const productionImageDigestPolicy: StackValidationPolicy = {
  name: "prod-images-by-digest",
  description: `In production (${PRODUCTION_STACKS.join(", ")}), images are pinned by digest as well as tag (advisory).`,
  enforcementLevel: "advisory",
  validateStack: (args, reportViolation) => {
    const resources = fromStack(args);
    if (!isProductionStack(resources)) return;
    for (const r of resources) checkImagesByDigest(r, reportViolation);
  },
};

export const POLICIES = [
  poolBudgetPolicy,
  restrictedPodSecurityPolicy,
  noPlaintextSecretsPolicy,
  productionAvailabilityPolicy,
  productionSpreadPolicy,
  productionServerLoginPolicy,
  productionTlsPolicy,
  productionImageDigestPolicy,
];
