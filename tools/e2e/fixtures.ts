/**
 * What exists before the pooler arrives, derived from the stack's own settings: the namespaces (Pod
 * Security `restricted` enforced), the backend team's stand-in backend (Deployment + ConfigMap pointing at
 * PostgreSQL, applied under their own field manager), and the pooler's secret in Vault.
 */
import { vaultReadsFor } from "../../components/credentials";
import type { StackSettings } from "../../stacks/settings";
import { type Kubectl, asList } from "./clients/kubectl";
import { type VaultClient, ensureKv2, kvPut } from "./clients/vault";

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

/** The Vault secret's values; `generation` changes the application password (a rotation). */
export function vaultData(s: StackSettings, generation: number): Record<string, string> {
  const c = s.credentials;
  const all: Record<string, string> = {
    [c.appUserKey]: "clipper_app",
    [c.appPasswordKey]: `app-password-${generation}`,
    [c.statsPasswordKey]: "exporter-password-1",
  };
  const keys = vaultReadsFor(c).flatMap((r) => r.keys);
  return Object.fromEntries(keys.map((k) => [k, all[k] ?? `e2e-${k}`]));
}

export async function writeVaultSecret(v: VaultClient, s: StackSettings, generation: number): Promise<void> {
  await ensureKv2(v, s.credentials.vaultMount);
  await kvPut(v, s.credentials.vaultMount, s.credentials.vaultPath, vaultData(s, generation));
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
}

/** The backend team's own apply of their ConfigMap and Deployment (server-side, their field manager). */
export async function applyBackend(kubectl: Kubectl, s: StackSettings): Promise<void> {
  await kubectl(["apply", "--server-side", `--field-manager=${BACKEND_FIELD_MANAGER}`, "-f", "-"], {
    input: asList([backendConfigMap(s), backendDeployment(s)]),
  });
}
