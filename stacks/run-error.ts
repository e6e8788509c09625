import * as pulumi from "@pulumi/pulumi";
import { UserError } from "../components/common";

/** The first line of the message that carries a bug's stack. */
export const UNEXPECTED_ERROR =
  "the program failed with an unexpected error (a bug: report it with this stack):";

/**
 * What the program's entry throws when it cannot deploy: always a `pulumi.RunError`, which the Pulumi CLI prints
 * as its message alone (cmd/run/run.js of @pulumi/pulumi 3.276.0, line 379: `log.error(err.message)`; the file is
 * unchanged since 3.248.0).
 *
 * - A {@link UserError} (a refused setting, Vault value or referenced object, a shell on another cluster or
 *   Vault) is the user's to fix: its message names every key or object at fault; no stack, no "unhandled
 *   exception", no inspected properties.
 * - Anything else is a bug: the message is {@link UNEXPECTED_ERROR} followed by the original stack.
 *
 * The RunError's own stack is cut to its first line. The SDK never prints it, but it formats every error it
 * catches with `util.inspect(err, { colors: true })` all the same (run.js line 402, an event of a tracing span,
 * evaluated with tracing off too; line 400 prints it for any error that is not a RunError), and Node.js 22's
 * colouring of stack frames loops on a frame such as `…/node_modules/@pulumi/resource.ts:1598:22` until the
 * string outgrows V8's limit (nodejs/node#64011): ~20 s of a full core each time (measured on 22.23.5, as on
 * 20.20.2; 24.22.3 and 26.12.1 answer at once). Every error thrown from the
 * entry has that frame (`Stack.initializeAndRegisterOutputs`: the SDK's source maps point one folder too high).
 * In the message, a bug's frames are text that Node does not colour.
 */
export function runError(e: unknown): pulumi.RunError {
  const r = pulumi.RunError.isInstance(e) ? e : new pulumi.RunError(messageOf(e));
  r.stack = `${r.name}: ${r.message}`;
  return r;
}

function messageOf(e: unknown): string {
  if (e instanceof UserError) return e.message;
  const detail = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
  return `${UNEXPECTED_ERROR}\n${detail}`;
}
