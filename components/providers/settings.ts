/**
 * Where a stack deploys (config key `providers`): its cluster, its Vault and its Grafana, pinned in the stack
 * file so that a shell left on another environment cannot send one stack's objects and secret reads to
 * another's. The tokens stay in the environment (`VAULT_TOKEN`, `GRAFANA_AUTH`, the kubeconfig's user).
 */
import { type Checks, type Infer, section, string } from "../common";

/** A kubeconfig context name: kubectl takes any non-empty name; this one without spaces or quotes. */
const CONTEXT_NAME = /^[A-Za-z0-9_.:@/-]{1,253}$/;
/** An http(s) URL: host, optional port and path, nothing after. */
const HTTP_URL = /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/;
const WHERE = "the stack's provider configuration (in the Pulumi state)";

/** The `providers` section. */
export const PROVIDERS = section({
  /**
   * The kubeconfig context the stack deploys with: the Kubernetes provider is pinned to it, and a shell
   * whose current context is another one is refused at preview (kubectl's kubeconfig: `KUBECONFIG`'s files,
   * else ~/.kube/config). Required.
   */
  kubernetesContext: string(CONTEXT_NAME, "a kubeconfig context name").landsIn(WHERE),
  /**
   * The Vault the stack reads its secret from and issues its certificate with: the Vault provider is pinned
   * to it, and a `VAULT_ADDR` naming another is refused at preview. Its token: `VAULT_TOKEN`. Required.
   */
  vaultAddress: string(HTTP_URL, "an http(s) URL such as https://vault.example:8200").landsIn(WHERE),
  /**
   * The Grafana the dashboard is pushed to: the Grafana provider is pinned to it, and a `GRAFANA_URL`
   * naming another is refused at preview. Its token: `GRAFANA_AUTH`.
   * @default unset; required when `monitoring.dashboard` is true
   */
  grafanaUrl: string(HTTP_URL, "an http(s) URL such as https://grafana.example").optional().landsIn(WHERE),
});
export type ProviderSettings = Infer<typeof PROVIDERS.shape>;

/** `providers.grafanaUrl` is needed exactly when the dashboard is pushed. */
export function checkProvidersAgainstMonitoring(
  s: { providers: ProviderSettings; monitoring: { dashboard: boolean } },
  c: Checks,
): void {
  if (s.monitoring.dashboard && s.providers.grafanaUrl === undefined) {
    c.add(
      "providers.grafanaUrl",
      `is required when ${c.key("monitoring.dashboard")} is true: the Grafana the dashboard goes to ` +
        `(its token stays in GRAFANA_AUTH); or set monitoring.dashboard to false`,
    );
  }
}

/**
 * An address as the program compares it: parsed as a URL (scheme and host in lower case, a default port
 * dropped, a bare host given its `/`), without a trailing `/`. Two spellings of one address compare equal.
 */
export function normalAddress(address: string): string {
  try {
    return new URL(address).href.replace(/\/+$/, "");
  } catch {
    return address.replace(/\/+$/, "");
  }
}
