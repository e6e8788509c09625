/**
 * The types every part of the e2e run shares: the world it runs in, what a scenario gets, what `--keep`
 * leaves. Types only, so that any module can import them without importing another's code.
 */
import type { Kubectl, KubectlRaw } from "./clients/kubectl";
import type { PulumiStack } from "./clients/pulumi";
import type { Toolchain } from "./toolchain/toolchain";

/** Where a part writes its progress (one line at a time). */
export type Log = (line: string) => void;

/**
 * A shell set up for one stack in this world, as the runbook asks: its kubeconfig with the stack's pinned
 * context current, `VAULT_ADDR` its Vault's address, and the config overrides that pin the stack's copy of
 * its stack file to this world (its Vault's address here; its context, on a cluster from KUBECONFIG).
 */
export interface StackShell {
  /** KUBECONFIG, VAULT_ADDR, VAULT_TOKEN and PATH for a `pulumi` of this stack. */
  readonly env: Readonly<Record<string, string>>;
  /** `providers.*` settings (`section.key` -> value) for the stack's config copy. */
  readonly overrides: Readonly<Record<string, string>>;
  /** The kubeconfig context the stack is pinned to here. */
  readonly context: string;
  /** The Vault address the stack is pinned to here. */
  readonly vaultAddr: string;
}

/** The cluster and Vault of a run: the local ones `startWorld()` started, or those the environment named. */
export interface World {
  /** Scratch folder of this world (logs, certificates, state of the scenario); removed by `stop()`. */
  readonly dir: string;
  readonly kubeconfig: string;
  readonly vaultAddr: string;
  readonly vaultToken: string;
  /** Environment a client of this world needs (PATH with the toolchain, KUBECONFIG, VAULT_*). */
  readonly env: Readonly<Record<string, string>>;
  readonly kubectl: Kubectl;
  readonly kubectlRaw: KubectlRaw;
  /** True for the parts this run started (false: taken from KUBECONFIG / VAULT_ADDR). */
  readonly local: { readonly kube: boolean; readonly vault: boolean };
  /**
   * The shell of `stack`. The local world has two contexts (the stacks' own) on its one cluster and two
   * addresses of its one OpenBao (`127.0.0.1` for one stack, `localhost` for the other), so that one stack's
   * shell is another environment for the other stack's program.
   */
  shell(stack: string): StackShell;
  /** Stops every process this world started (reverse order) and removes `dir`. */
  stop(): Promise<void>;
  /** Leaves the processes running; writes the state file `--down` reads. */
  keep(stateFile: string): KeptWorld;
}

/** What `--keep` leaves and `--down` stops. */
export interface KeptWorld {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly vaultAddr: string;
  readonly vaultToken: string;
  readonly processes: readonly { readonly name: string; readonly pid: number; readonly exe: string }[];
}

/** A part of the run that needs the world only (the GitOps renders, the render's drains). */
export interface PartContext {
  readonly world: World;
  readonly log: Log;
}

/** The runbook scenario of one stack: the world, and the real Pulumi CLI bound to that stack. */
export interface ScenarioContext extends PartContext {
  readonly stack: string;
  readonly pulumi: PulumiStack;
}

/** The parts beyond the runbook scenario (`gitops`, `maintenance`, `ownership`). */
export interface ExtraContext extends PartContext {
  readonly tools: Toolchain;
  /** Config overrides of every e2e stack (main.ts's E2E_OVERRIDES). */
  readonly overrides: Readonly<Record<string, string>>;
}
