/**
 * The shell against the stack's pinned cluster, Vault and Grafana: a preview or update from a shell left on
 * another environment (its kubeconfig's current context, `VAULT_ADDR`, `GRAFANA_URL`) is refused before
 * anything is registered or read, naming what the stack expects and what the shell has.
 */
import { UserError } from "../common";
import { type KubeCluster, type KubeUser, type Kubeconfig, resolveContext } from "./kubeconfig";
import { type ProviderSettings, normalAddress } from "./settings";

/** The environment the program runs in, as far as the targets go. */
export type ShellEnv = Readonly<Record<string, string | undefined>>;

/** Thrown before any resource is registered: the shell points at another cluster, Vault or Grafana. */
export class ProviderTargetError extends UserError {
  constructor(
    readonly stackName: string,
    readonly problems: readonly string[],
  ) {
    super(
      `this shell is set up for another environment than the stack ${stackName} (${problems.length} ` +
        `${problems.length === 1 ? "problem" : "problems"}); nothing was read or changed:\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
  }
}

/** The pinned context's cluster and credentials, once the shell agrees with the stack. */
export interface ClusterTarget {
  readonly context: string;
  readonly cluster: KubeCluster;
  readonly user: KubeUser;
  /** Where the kubeconfig came from, for messages. */
  readonly source: string;
}

/**
 * What is wrong with the shell for a stack pinned to `p`, each problem naming the setting, what it expects
 * and what was found. `key` gives a setting's full key (`clipper-pgbouncer:providers.vaultAddress`).
 */
export function targetProblems(
  p: ProviderSettings,
  env: ShellEnv,
  kubeconfig: Kubeconfig,
  key: (field: string) => string,
): string[] {
  const problems: string[] = [];
  const context = p.kubernetesContext;
  const resolved = resolveContext(kubeconfig, context);
  if ("problem" in resolved) {
    problems.push(
      `${key("kubernetesContext")}: expects the kubeconfig context "${context}", but ${resolved.problem}`,
    );
  } else if (kubeconfig.currentContext !== context) {
    const found =
      kubeconfig.currentContext === undefined
        ? `${kubeconfig.source} sets no current context`
        : `the current context of ${kubeconfig.source} is "${kubeconfig.currentContext}"`;
    problems.push(
      `${key("kubernetesContext")}: expects the kubeconfig context "${context}", but ${found}; switch with ` +
        `\`kubectl config use-context ${context}\` (or point KUBECONFIG at this stack's kubeconfig) and run again`,
    );
  }
  const checkAddress = (field: string, variable: string, expected: string | undefined, what: string) => {
    const found = env[variable];
    if (expected === undefined || found === undefined || found === "") return;
    if (normalAddress(found) === normalAddress(expected)) return;
    problems.push(
      `${key(field)}: expects the ${what} at ${expected}, but ${variable} is ${found}; unset ${variable} or ` +
        `set it to ${expected} (with a token of that ${what}) and run again`,
    );
  };
  checkAddress("vaultAddress", "VAULT_ADDR", p.vaultAddress, "Vault");
  checkAddress("grafanaUrl", "GRAFANA_URL", p.grafanaUrl, "Grafana");
  return problems;
}

/**
 * Checks the shell against the stack (see {@link targetProblems}); returns the pinned context's cluster and
 * credentials, or throws a {@link ProviderTargetError}.
 */
export function checkTargets(
  stack: string,
  p: ProviderSettings,
  env: ShellEnv,
  kubeconfig: Kubeconfig,
  key: (field: string) => string,
): ClusterTarget {
  const problems = targetProblems(p, env, kubeconfig, key);
  const resolved = resolveContext(kubeconfig, p.kubernetesContext);
  if (problems.length > 0 || "problem" in resolved) throw new ProviderTargetError(stack, problems);
  return { context: p.kubernetesContext, source: kubeconfig.source, ...resolved };
}
