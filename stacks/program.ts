/**
 * The program `pulumi up` runs, given the world it runs in: the shell's environment and files (the
 * kubeconfig). index.ts runs it in the live world; the offline engine (testing/engine.ts) in an offline one.
 *
 * Every refusal comes before the first resource is registered and ends the program with one message (a
 * `pulumi.RunError`, no stack trace): the settings (validated as a whole), the shell against the stack's
 * pinned cluster, Vault and Grafana, then (stacks/environment.ts) the Vault reads and the preflight of what
 * the stack names but does not own.
 */
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { readLastRoute } from "../components/backend-route/resources";
import { IssueList } from "../components/common";
import {
  type ClusterReader,
  type ClusterTarget,
  type ShellEnv,
  checkTargets,
  clusterReader,
  readKubeconfig,
} from "../components/providers";
import { type EnvironmentOutputs, deployEnvironment } from "./environment";
import { runError } from "./run-error";
import { runningStackConfig } from "./running-config";
import { parseStack } from "./settings";
import { CONFIG_NAMESPACE, key } from "./stack-file";

/** What the program reads of the machine it runs on. */
export interface ProgramWorld {
  /** The environment the Pulumi CLI runs the program with (KUBECONFIG, HOME, VAULT_ADDR, GRAFANA_*). */
  readonly env: ShellEnv;
  /** A file's text, or undefined when it does not exist (the kubeconfig's files). */
  readonly readFile: (file: string) => string | undefined;
  /** The stack's pinned cluster, read with its context's credentials (the preflight). */
  readonly cluster: (target: ClusterTarget) => ClusterReader;
}

/** The machine the program runs on. */
export function liveWorld(): ProgramWorld {
  const readFile = (file: string): string | undefined => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  };
  return {
    env: process.env,
    readFile,
    cluster: (target) => clusterReader(target, { env: process.env, readFile }),
  };
}

/** Provider packages whose default providers the program no longer uses: their config keys are not read. */
const PROVIDER_NAMESPACES = ["kubernetes", "vault", "grafana"];

/**
 * A stack file's `kubernetes:*`, `vault:*` or `grafana:*` keys would configure the default providers, which
 * the project disables: nothing reads them. Each is refused, saying what replaced it.
 */
export function providerConfigIssues(
  keys: readonly string[],
  issues: IssueList = new IssueList(),
): IssueList {
  for (const k of keys) {
    const ns = k.split(":")[0];
    if (!PROVIDER_NAMESPACES.includes(ns)) continue;
    const instead =
      ns === "kubernetes"
        ? `${key("providers")}.kubernetesContext (the kubeconfig context)`
        : ns === "vault"
          ? `${key("providers")}.vaultAddress, with the token in VAULT_TOKEN (and VAULT_MAX_RETRIES)`
          : `${key("providers")}.grafanaUrl, with the token in GRAFANA_AUTH`;
    issues.add(
      k,
      `is not read: the program's providers are explicit (docs/settings.md, "Providers"); use ${instead}`,
    );
  }
  return issues;
}

/** Runs the program: the stack outputs, or one `pulumi.RunError` saying what to fix. */
export async function runProgram(world: ProgramWorld): Promise<EnvironmentOutputs> {
  try {
    const { raw, secretSections, otherKeys } = runningStackConfig();
    const issues = providerConfigIssues(otherKeys);
    const { value: settings, secretInputs } = parseStack(raw, secretSections, issues);
    const target = checkTargets(
      pulumi.getStack(),
      settings.providers,
      world.env,
      readKubeconfig(world.env, world.readFile),
      (field) => `${CONFIG_NAMESPACE}:providers.${field}`,
    );
    // The stack's own last outputs, for a rename while routed (components/backend-route/rename.ts).
    const lastRoute = await readLastRoute();
    return await deployEnvironment(settings, {
      secretInputs,
      env: world.env,
      cluster: world.cluster(target),
      lastRoute,
    });
  } catch (e) {
    throw runError(e);
  }
}
