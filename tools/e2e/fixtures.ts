/**
 * What exists before the pooler arrives, derived from the stack's own settings: the namespaces (Pod
 * Security `restricted` enforced), the backend team's stand-in backend (Deployment + ConfigMap pointing at
 * PostgreSQL, applied under their own field manager), PostgreSQL's CA where the stack verifies it from a
 * ConfigMap, the pooler's secret in Vault, and Vault's PKI engine with the role that issues the pooler's
 * certificate (allowed the Service's names and nothing else).
 */
import * as fs from "node:fs";
import { vaultReadsFor } from "../../components/credentials";
import { SERVICE_NAME, serviceNames } from "../../components/pgbouncer";
import type { StackSettings } from "../../stacks/settings";
import { makeRunDir } from "../harness/proc";
import { type TestCa, makeTestCa } from "../harness/tls";
import { type Kubectl, asList } from "./clients/kubectl";
import { type VaultClient, ensureKv2, ensurePkiRoot, kvPut, pkiIssue, writePkiRole } from "./clients/vault";

/** The backend team's field manager: the owner of everything in their objects but the pooler's keys. */
export const BACKEND_FIELD_MANAGER = "clipper-backend-team";
/** Marks namespaces this e2e made; an existing cluster's namespace without it is never touched. */
export const E2E_LABEL = "clipper.io/e2e";

export function backendNamespace(s: StackSettings): string {
  return s.backend.namespace ?? s.namespace;
}

export function namespaceManifest(name: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name,
      labels: {
        [E2E_LABEL]: "true",
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
      },
    },
  };
}

/** The backend's own ConfigMap: PostgreSQL's host and port, plus a key the pooler must never touch. */
export function backendConfigMap(s: StackSettings): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: s.backend.configMapName, namespace: backendNamespace(s) },
    data: {
      [s.backend.hostKey]: s.database.host,
      [s.backend.portKey]: String(s.database.port),
      DB_NAME: s.database.name,
      LOG_LEVEL: "info",
    },
  };
}

/** A Deployment whose pods read the ConfigMap and pass the `restricted` Pod Security profile. */
export function backendDeployment(s: StackSettings): Record<string, unknown> {
  const labels = { ...s.network.backendPodSelector };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: s.backend.deploymentName, namespace: backendNamespace(s), labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: "backend",
              image: "registry.k8s.io/pause:3.10",
              envFrom: [{ configMapRef: { name: s.backend.configMapName } }],
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              resources: { requests: { cpu: "10m", memory: "16Mi" } },
            },
          ],
        },
      },
    },
  };
}

/**
 * Where the alternating-logins rotation (components/credentials/README.md, "Rotation") stands: each login's
 * password generation, and the login backends use (`current`). The first login is `a`, the second `b`.
 */
export interface LoginsState {
  readonly a: number;
  readonly b: number;
  readonly current: "a" | "b";
}

/** The secret as the platform team writes it first: both logins, backends on the first. */
export const FIRST_LOGINS: LoginsState = { a: 1, b: 1, current: "a" };

/** The two application logins' PostgreSQL users (the README's `clipper_app_a` and `clipper_app_b`). */
export const APP_USERS = { a: "clipper_app_a", b: "clipper_app_b" } as const;

/** A login's password in generation `generation` (what PostgreSQL and Vault are set to). */
export function appPassword(login: "a" | "b", generation: number): string {
  return `app-password-${login}-${generation}`;
}

/** The stats user's password (the exporters' login to PgBouncer's console). */
export const STATS_PASSWORD = "exporter-password-1";

/** The Vault secret's values at `state`: every key the stack reads (`vaultReadsFor`). */
export function vaultData(s: StackSettings, state: LoginsState = FIRST_LOGINS): Record<string, string> {
  const c = s.credentials;
  const all: Record<string, string> = {
    [c.appUserKey]: APP_USERS.a,
    [c.appPasswordKey]: appPassword("a", state.a),
    [c.statsPasswordKey]: STATS_PASSWORD,
    ...(c.secondLogin
      ? {
          [c.secondLogin.userKey]: APP_USERS.b,
          [c.secondLogin.passwordKey]: appPassword("b", state.b),
          [c.secondLogin.currentKey]: APP_USERS[state.current],
        }
      : {}),
  };
  const keys = vaultReadsFor(c).flatMap((r) => r.keys);
  return Object.fromEntries(keys.map((k) => [k, all[k] ?? `e2e-${k}`]));
}

/** The logins the auth file holds at `state`, as PostgreSQL must have them: user -> password. */
export function appLogins(s: StackSettings, state: LoginsState): Map<string, string> {
  const logins = new Map<string, string>([[APP_USERS.a, appPassword("a", state.a)]]);
  if (s.credentials.secondLogin) logins.set(APP_USERS.b, appPassword("b", state.b));
  return logins;
}

export async function writeVaultSecret(
  v: VaultClient,
  s: StackSettings,
  state: LoginsState = FIRST_LOGINS,
): Promise<void> {
  await ensureKv2(v, s.credentials.vaultMount);
  await kvPut(v, s.credentials.vaultMount, s.credentials.vaultPath, vaultData(s, state));
}

/**
 * Namespaces and the stand-in backend, applied server-side under the backend team's manager. Refuses an
 * existing namespace this e2e did not make: it may be a real environment.
 */
export async function applyFixtures(kubectl: Kubectl, s: StackSettings): Promise<void> {
  for (const ns of new Set([s.namespace, backendNamespace(s)])) {
    const found = await kubectl(["get", "namespace", ns, "--ignore-not-found", "-o", "json"]);
    if (found.trim() !== "") {
      const labels =
        (JSON.parse(found) as { metadata: { labels?: Record<string, string> } }).metadata.labels ?? {};
      if (labels[E2E_LABEL] !== "true") {
        throw new Error(
          `e2e: namespace ${ns} exists and is not labelled ${E2E_LABEL}=true; refusing to touch it`,
        );
      }
    }
    await kubectl(["apply", "--server-side", "--field-manager=clipper-e2e", "-f", "-"], {
      input: JSON.stringify(namespaceManifest(ns)),
    });
  }
  await applyBackend(kubectl, s);
  await applyServerCa(kubectl, s);
}

/** The root's common name in OpenBao's PKI engine (the issuer of every pooler certificate of the run). */
export const PKI_ROOT_CN = "clipper e2e root";
/** The PKI engine's and its root's `max_lease_ttl` / `ttl`: a year, above any stack's `ttlSeconds`. */
const PKI_ROOT_TTL = "8760h";

/** One PKI role of the stacks: its mount, the names it may issue, the longest validity a stack asks for. */
export interface PkiRole {
  readonly mount: string;
  readonly role: string;
  readonly names: string[];
  readonly maxTtlSeconds: number;
}

/**
 * The roles the stacks' `tls.certificate` (source `vault-pki`) need, one per mount and role: the four
 * Service names of each stack's namespace, and nothing else.
 */
export function pkiRoles(stacks: readonly StackSettings[]): PkiRole[] {
  const roles = new Map<string, PkiRole>();
  for (const s of stacks) {
    const c = s.tls.certificate;
    if (c?.source !== "vault-pki") continue;
    const key = `${c.mount}/roles/${c.role}`;
    const had = roles.get(key);
    const names = serviceNames(SERVICE_NAME, s.namespace);
    roles.set(key, {
      mount: c.mount,
      role: c.role,
      names: [...new Set([...(had?.names ?? []), ...names])],
      maxTtlSeconds: Math.max(had?.maxTtlSeconds ?? 0, c.ttlSeconds),
    });
  }
  return [...roles.values()];
}

/** The role's body: exactly `names` (no subdomain, glob, localhost, IP or other name), server use only. */
export function pkiRoleBody(r: PkiRole): Record<string, unknown> {
  return {
    allowed_domains: r.names,
    allow_bare_domains: true,
    allow_subdomains: false,
    allow_glob_domains: false,
    allow_wildcard_certificates: false,
    allow_localhost: false,
    allow_ip_sans: false,
    allow_any_name: false,
    enforce_hostnames: true,
    server_flag: true,
    client_flag: false,
    max_ttl: `${r.maxTtlSeconds}s`,
  };
}

/**
 * Vault's PKI as the platform team sets it up for the stacks: the engine with an internal root at each
 * mount, and each role; then proves each role least-privileged (a name beside the Service's is refused).
 * Returns each mount's root PEM.
 */
export async function setupVaultPki(
  v: VaultClient,
  stacks: readonly StackSettings[],
): Promise<Map<string, string>> {
  const roots = new Map<string, string>();
  for (const r of pkiRoles(stacks)) {
    if (!roots.has(r.mount)) roots.set(r.mount, await ensurePkiRoot(v, r.mount, PKI_ROOT_CN, PKI_ROOT_TTL));
    await writePkiRole(v, r.mount, r.role, pkiRoleBody(r));
    const [ns] = r.names[1].split(".").slice(1);
    for (const other of [`${SERVICE_NAME}.default.svc`, `evil.${ns}.svc`, `x.${r.names[3]}`]) {
      const got = await pkiIssue(v, r.mount, r.role, other);
      if (got.status !== 400 || !/not allowed/.test(got.text)) {
        throw new Error(
          `e2e: the PKI role ${r.mount}/${r.role} issued ${other}: HTTP ${got.status} ${got.text}`,
        );
      }
    }
  }
  return roots;
}

let testServerCa: TestCa | undefined;

/**
 * PostgreSQL's CA as its DBA would hand it out, made once per run with openssl (tools/harness/tls.ts). Its key
 * stays in a folder of the run (removed when the process exits): the bridges to the real binaries start a
 * PostgreSQL whose certificate it signs, so that the live `postgres-ca` verifies it byte for byte.
 */
export function postgresTestCa(): TestCa {
  if (testServerCa) return testServerCa;
  const dir = makeRunDir("clipper-e2e-pgca");
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  testServerCa = makeTestCa(dir, "clipper e2e PostgreSQL CA");
  return testServerCa;
}

/**
 * PostgreSQL's CA where the stack reads it from a ConfigMap (prod's `postgres-ca`): applied by the
 * platform's own field manager, in the pooler's namespace. A Secret or a Vault key is not made here.
 */
export async function applyServerCa(kubectl: Kubectl, s: StackSettings): Promise<void> {
  const ca = s.tls.serverCa;
  if (ca?.source !== "configmap") return;
  const cm = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: ca.name, namespace: s.namespace },
    data: { [ca.key]: postgresTestCa().certPem },
  };
  await kubectl(["apply", "--server-side", "--field-manager=clipper-e2e", "-f", "-"], {
    input: JSON.stringify(cm),
  });
}

/** The backend team's own apply of their ConfigMap and Deployment (server-side, their field manager). */
export async function applyBackend(kubectl: Kubectl, s: StackSettings): Promise<void> {
  await kubectl(["apply", "--server-side", `--field-manager=${BACKEND_FIELD_MANAGER}`, "-f", "-"], {
    input: asList([backendConfigMap(s), backendDeployment(s)]),
  });
}
