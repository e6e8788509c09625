/**
 * Runs the Pulumi program exactly as `pulumi up` would, but against Pulumi's mock runtime: no CLI, no
 * cluster, no Vault, no Grafana. Every resource the program registers is recorded with its inputs; secret
 * inputs keep their secret marker so a caller can redact them or prove they are secret.
 */
import { offlineState } from "./pki";
import * as pulumi from "@pulumi/pulumi";
import { VAULT_KV2_READ_TOKEN } from "../components/credentials";
import { stackFileConfig, CONFIG_NAMESPACE } from "../stacks/stack-file";
import { type RecordedResource, offlineName } from "./resource";
import { promiseOf } from "./outputs";

export type { RecordedResource } from "./resource";

/** A provider function call (Vault reads). */
export interface RecordedCall {
  readonly token: string;
  readonly inputs: Record<string, unknown>;
}

/** Answers a Vault KV v2 read: the secret's data, or undefined when the path does not exist. */
export type VaultSource = (mount: string, name: string) => Record<string, string> | undefined;

export interface OfflineRun {
  /** The stack that ran. */
  readonly stack: string;
  readonly resources: readonly RecordedResource[];
  readonly calls: readonly RecordedCall[];
  /** Stack outputs, resolved. */
  readonly outputs: Readonly<Record<string, unknown>>;
  /** Names of the stack outputs that are Pulumi secrets. */
  readonly secretOutputs: readonly string[];
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
  readonly vault: VaultSource;
  /**
   * Array the run records resources into as they are registered; lets a caller see what a failed run left.
   * @default a fresh array
   */
  readonly record?: RecordedResource[];
  /** Run as `pulumi preview` (unknowns stay unknown). @default false */
  readonly preview?: boolean;
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

let running = false;

/** Runs the program under mocks and returns everything it registered. One run at a time per process. */
export async function runOffline(opts: OfflineOptions): Promise<OfflineRun> {
  if (running) throw new Error("runOffline is not re-entrant");
  running = true;
  try {
    const resources: RecordedResource[] = opts.record ?? [];
    const calls: RecordedCall[] = [];
    let pending = 0;
    await pulumi.runtime.setMocks(
      {
        newResource: (args: pulumi.runtime.MockResourceArgs) => {
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
            if (args.token === VAULT_KV2_READ_TOKEN) {
              const inputs = args.inputs as { mount: string; name: string };
              return kvV2ReadResult(inputs.mount, inputs.name, opts.vault(inputs.mount, inputs.name));
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
    );
    const config = { ...stackFileConfig(opts.stack), ...opts.config };
    for (const k of opts.unset ?? []) delete config[k];
    pulumi.runtime.setAllConfig(config);

    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const program = require("../index") as () => Promise<Record<string, unknown>>;
    const exported = await program();
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
    return { stack: opts.stack, resources, calls, outputs, secretOutputs };
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
