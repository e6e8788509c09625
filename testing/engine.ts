/**
 * Runs the Pulumi program exactly as `pulumi up` would, but against Pulumi's mock runtime: no CLI, no
 * cluster, no Vault, no Grafana. Every resource the program registers is recorded with its inputs; secret
 * inputs keep their secret marker so a caller can redact them or prove they are secret.
 */
import { offlineState } from "./pki";
import * as pulumi from "@pulumi/pulumi";
import { VAULT_KV2_READ_TOKEN } from "../components/credentials/resources";
import { VAULT_GENERIC_READ_TOKEN } from "../components/pgbouncer/resources";
import { CONFIG_NAMESPACE, disabledDefaultProviders, stackFileConfig } from "../stacks/stack-file";
import type { ProgramWorld } from "../stacks/program";
import { type InvokeRecord, type Registration, setOfflineMocks } from "./monitor";
import { DeletedVersion, type VaultPaths, type VaultSource, offlinePki } from "./offline-vault";
import { offlineWorld } from "./offline-world";
import { type RecordedResource, offlineName } from "./resource";
import { promiseOf } from "./outputs";

export type { RecordedResource } from "./resource";
export type { InvokeRecord, Registration } from "./monitor";
export { DeletedVersion, type VaultPaths, type VaultSource } from "./offline-vault";

/** A provider function call (Vault reads). */
export interface RecordedCall {
  readonly token: string;
  readonly inputs: Record<string, unknown>;
}

export interface OfflineRun {
  /** The stack that ran. */
  readonly stack: string;
  readonly resources: readonly RecordedResource[];
  readonly calls: readonly RecordedCall[];
  /** Stack outputs, resolved. */
  readonly outputs: Readonly<Record<string, unknown>>;
  /** Names of the stack outputs that are Pulumi secrets. */
  readonly secretOutputs: readonly string[];
  /** What the engine saw of each registration: provider, dependencies, hooks, protection. */
  readonly registrations: readonly Registration[];
  /** Every provider function call, with its provider. */
  readonly invokes: readonly InvokeRecord[];
  /** Names of the resource hooks the program registered. */
  readonly hooks: readonly string[];
  /** Registrations, reads and invokes, in the order the engine got them (`register <urn>`, `invoke <token>`). */
  readonly events: readonly string[];
}

/** The value of a stack output that a preview cannot know yet. */
export const UNKNOWN_IN_PREVIEW = "(known after pulumi up)";

export interface OfflineOptions {
  /** Stack name; its `Pulumi.<stack>.yaml` is the config. */
  readonly stack: string;
  /** Config keys to set or override (full keys, string values as the CLI passes them). */
  readonly config?: Readonly<Record<string, string>>;
  /** Config keys to remove from the stack file's config. */
  readonly unset?: readonly string[];
  /** Config keys (full) whose values are Pulumi secrets, as `pulumi config set --secret` makes them. @default none */
  readonly secretKeys?: readonly string[];
  readonly vault: VaultSource;
  /** Answers Vault reads of other paths (the PKI role). @default the stack's PKI mount and role (offlinePki) */
  readonly vaultPaths?: VaultPaths;
  /**
   * Array the run records resources into as they are registered; lets a caller see what a failed run left.
   * @default a fresh array
   */
  readonly record?: RecordedResource[];
  /** Run as `pulumi preview` (unknowns stay unknown). @default false */
  readonly preview?: boolean;
  /** The machine the program runs on. @default a shell set up for the stack (testing/offline-world.ts) */
  readonly world?: ProgramWorld;
  /**
   * The stack's outputs after its last update, as its StackReference to itself reads them. @default none (a
   * stack never updated)
   */
  readonly lastOutputs?: Readonly<Record<string, unknown>>;
  /**
   * How many times Vault PKI has re-issued each certificate (see `offlinePkiState`): 1 is the state after
   * the first renewal. @default 0
   */
  readonly renewals?: number;
}

/**
 * What the Vault provider answers for a KV v2 read of `mount`/`name`: the secret's data, or, for a missing
 * secret, the provider's error (the runtime passes on only an error's `details`).
 */
export function kvV2ReadResult(
  mount: string,
  name: string,
  data: Record<string, string> | undefined,
  opts: { deleted?: boolean; version?: number } = {},
): Record<string, unknown> {
  if (data === undefined) {
    const message = `error reading from Vault: no secret found at "${mount}/data/${name}"`;
    throw Object.assign(new Error(message), { details: message });
  }
  const visible = opts.deleted ? {} : data;
  return {
    id: `${mount}/data/${name}`,
    mount,
    name,
    path: `${mount}/data/${name}`,
    data: visible,
    dataJson: JSON.stringify(visible),
    customMetadata: {},
    createdTime: "2026-01-01T00:00:00Z",
    deletionTime: opts.deleted ? "2026-01-02T00:00:00Z" : "",
    destroyed: false,
    version: opts.version ?? 1,
  };
}

/**
 * What the Vault provider answers for a read of `path` (`vault.generic.getSecret`): its data, or, when
 * nothing is there, the provider's error.
 */
export function genericReadResult(
  path: string,
  data: Record<string, string> | undefined,
): Record<string, unknown> {
  if (data === undefined) {
    const message = `no secret found at "${path}"`;
    throw Object.assign(new Error(message), { details: message });
  }
  return {
    id: path,
    path,
    data,
    dataJson: JSON.stringify(data),
    leaseId: "",
    leaseDuration: 0,
    leaseRenewable: false,
    leaseStartTime: "",
    version: -1,
    withLeaseStartTime: true,
  };
}

/** The type of a StackReference (a read of another stack's outputs; here, the stack's own). */
export const STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference";

let running = false;

/** Runs the program under mocks and returns everything it registered. One run at a time per process. */
export async function runOffline(opts: OfflineOptions): Promise<OfflineRun> {
  if (running) throw new Error("runOffline is not re-entrant");
  running = true;
  try {
    const resources: RecordedResource[] = opts.record ?? [];
    const config = { ...stackFileConfig(opts.stack), ...opts.config };
    for (const k of opts.unset ?? []) delete config[k];
    const paths = opts.vaultPaths ?? offlinePki(config);
    const calls: RecordedCall[] = [];
    let pending = 0;
    const seen = await setOfflineMocks(
      {
        newResource: (args: pulumi.runtime.MockResourceArgs) => {
          if (args.type === STACK_REFERENCE_TYPE) {
            // A read of the stack's own last outputs: answered, not recorded (nothing is created).
            const given = (args.inputs as { name?: unknown }).name;
            const name = typeof given === "string" ? given : args.name;
            return { id: name, state: { name, outputs: { ...opts.lastOutputs }, secretOutputNames: [] } };
          }
          resources.push({
            type: args.type,
            name: args.name,
            inputs: args.inputs as Record<string, unknown>,
          });
          const state = offlineState(args.type, args.inputs as Record<string, unknown>, opts.renewals);
          // Auto-naming: the provider appends a random suffix; offline, ConfigMaps and Secrets get a
          // content hash and other objects keep their logical name (see offlineName).
          const meta = (state.metadata ?? {}) as Record<string, unknown>;
          if (args.type.startsWith("kubernetes:") && meta.name === undefined) {
            state.metadata = { ...meta, name: offlineName(args.type, args.name, args.inputs) };
          }
          return { id: `${args.name}-id`, state };
        },
        call: (args: pulumi.runtime.MockCallArgs) => {
          calls.push({ token: args.token, inputs: args.inputs as Record<string, unknown> });
          pending++;
          try {
            if (args.token === VAULT_GENERIC_READ_TOKEN) {
              const { path } = args.inputs as { path: string };
              return genericReadResult(path, paths(path));
            }
            if (args.token === VAULT_KV2_READ_TOKEN) {
              const inputs = args.inputs as { mount: string; name: string };
              const answer = opts.vault(inputs.mount, inputs.name);
              return answer instanceof DeletedVersion
                ? kvV2ReadResult(inputs.mount, inputs.name, answer.data, { deleted: true })
                : kvV2ReadResult(inputs.mount, inputs.name, answer);
            }
            throw new Error(`the offline engine has no answer for ${args.token}`);
          } finally {
            pending--;
          }
        },
      },
      CONFIG_NAMESPACE,
      opts.stack,
      opts.preview ?? false,
      disabledDefaultProviders(),
    );
    pulumi.runtime.setAllConfig(config, [...(opts.secretKeys ?? [])]);

    // Loaded after the mocks, as the CLI loads index.ts, which runs the same function in the live world.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runProgram } = require("../stacks/program") as typeof import("../stacks/program");
    const exported = (await runProgram(opts.world ?? offlineWorld(config))) as unknown as Record<
      string,
      unknown
    >;
    const outputs: Record<string, unknown> = {};
    const secretOutputs: string[] = [];
    for (const [k, v] of Object.entries(exported)) {
      if (pulumi.Output.isInstance(v)) {
        const o = v;
        // In a preview an output computed by the provider stays unknown and `apply` never runs; every
        // Output carries its known-ness as a promise (not in the SDK's types, stable at runtime).
        const known = await (o as unknown as { isKnown: Promise<boolean> }).isKnown;
        outputs[k] = known ? await promiseOf(o) : UNKNOWN_IN_PREVIEW;
        if (await pulumi.isSecret(o)) secretOutputs.push(k);
      } else {
        outputs[k] = v;
      }
    }
    await settle(() => resources.length + pending);
    return {
      stack: opts.stack,
      resources,
      calls,
      outputs,
      secretOutputs,
      registrations: seen.registrations,
      invokes: seen.invokes,
      hooks: seen.hooks,
      events: seen.events,
    };
  } finally {
    running = false;
  }
}

/** Waits until the mock engine has seen no new registration for a few turns of the event loop. */
async function settle(progress: () => number): Promise<void> {
  let last = -1;
  let quiet = 0;
  while (quiet < 5) {
    await new Promise((r) => setTimeout(r, 10));
    const now = progress();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}
