/** Shared test helpers: Pulumi mocks that record resources, and a promise helper for outputs. */
import { offlineState } from "../../testing/pki";
import type * as pulumi from "@pulumi/pulumi";
import { type MonitorRecord, setOfflineMocks } from "../../testing/monitor";
import { offlineName } from "../../testing/resource";
import { CONFIG_NAMESPACE } from "../../stacks/stack-file";

export interface Registered {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

/** Every resource registered since the last `resetMocks`. */
export const registered: Registered[] = [];

/**
 * Installs recording mocks (the offline engine's, which take resource hooks); call in `before`, and
 * `registered.length = 0` in `beforeEach` as needed. Returns what the engine saw beyond the inputs.
 */
export async function resetMocks(preview = false): Promise<MonitorRecord> {
  registered.length = 0;
  return setOfflineMocks(
    {
      newResource: (args: pulumi.runtime.MockResourceArgs) => {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
        const state = offlineState(args.type, args.inputs as Record<string, unknown>);
        const meta = (state.metadata ?? {}) as Record<string, unknown>;
        if (args.type.startsWith("kubernetes:") && meta.name === undefined) {
          state.metadata = { ...meta, name: offlineName(args.type, args.name, args.inputs) };
        }
        return { id: `${args.name}-id`, state };
      },
      call: (args: pulumi.runtime.MockCallArgs) => {
        throw new Error(`unexpected call ${args.token}`);
      },
    },
    CONFIG_NAMESPACE,
    "test",
    preview,
  );
}

export { promiseOf } from "../../testing/outputs";

/** Waits until registrations have arrived at the mock monitor. */
export async function settled(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
}

/** The one registered resource of a type (fails when there is not exactly one). */
export function one(type: string, list: readonly Registered[] = registered, name?: string): Registered {
  const found = list.filter((r) => r.type === type && (name === undefined || r.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${type}, got ${found.length}: ${list.map((r) => r.type).join(", ")}`);
  }
  return found[0];
}
