/**
 * One explicit provider per package, pinned to the stack's own cluster, Vault and Grafana and passed to every
 * component (`providers`) and invoke (`provider`); `Pulumi.yaml` disables the default providers, so nothing
 * can fall back to whatever the shell's environment points at.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import * as grafana from "@pulumiverse/grafana";
import type { ProviderSettings } from "./settings";
import type { ShellEnv } from "./targets";

export interface GrafanaProviderOptions {
  /** The environment its token comes from (`GRAFANA_AUTH`). */
  readonly env: ShellEnv;
}

/** The stack's Kubernetes provider, pinned to `providers.kubernetesContext`. */
export function kubernetesProvider(p: ProviderSettings): k8s.Provider {
  return new k8s.Provider("kubernetes", {
    context: p.kubernetesContext,
    // "", not left out: the SDK fills a missing kubeconfig with KUBECONFIG as one path, which a list of
    // files (kubectl's form) breaks; "" makes the provider load it as kubectl does (client-go's loading
    // rules: KUBECONFIG's files, else ~/.kube/config), and keeps every credential out of the state.
    kubeconfig: "",
    // ConfigMaps and Secrets are updated in place, not deleted and created again: a renewed certificate
    // reaches the stable-named pgbouncer-tls and pgbouncer-ca with no moment in which they are missing (a pod
    // starting then would wait on its mounts). An object that says `immutable: true` is still replaced on a
    // change (the provider's diff.go, forceNewProperties). enableSecretMutable needs provider 4.18.0 or later
    // (enableConfigMapMutable 3.17.0); the e2e runs 4.25.0.
    enableConfigMapMutable: true,
    enableSecretMutable: true,
  });
}

/**
 * The stack's Vault provider, pinned to `providers.vaultAddress`; its token is the provider's own read of
 * VAULT_TOKEN (the SDK puts none in the provider's inputs).
 */
export function vaultProvider(p: ProviderSettings): vault.Provider {
  return new vault.Provider("vault", { address: p.vaultAddress });
}

/** The stack's Grafana provider, pinned to `providers.grafanaUrl`; undefined when the stack names none. */
export function grafanaProvider(
  p: ProviderSettings,
  opts: GrafanaProviderOptions,
): grafana.Provider | undefined {
  if (p.grafanaUrl === undefined) return undefined;
  const auth = opts.env.GRAFANA_AUTH;
  return new grafana.Provider("grafana", {
    url: p.grafanaUrl,
    // Given, so that it is a Pulumi secret from the start: the SDK copies GRAFANA_AUTH into the inputs unmarked.
    ...(auth ? { auth: pulumi.secret(auth) } : {}),
  });
}
