/**
 * The small runner of a scenario's steps: in the order listed, numbered in that order (the number a log line
 * shows is the step's place in the list), each timed; the first failure stops the scenario.
 */
import { type Timings, timed } from "../../common";
import type { Log } from "../context";

export interface Step<C> {
  /** The step's name, as the docs call it (`preview-and-up`). */
  readonly name: string;
  /** What the step does and asserts, in one line. */
  readonly title: string;
  readonly run: (c: C) => Promise<void>;
}

/** Runs `steps` in order on `c`, logged and timed as `[<label>] step <n> <name>`. */
export async function runSteps<C>(
  label: string,
  steps: readonly Step<C>[],
  c: C,
  log: Log,
  timings?: Timings,
): Promise<void> {
  for (const [i, step] of steps.entries()) {
    await timed(
      `[${label}] step ${i + 1} ${step.name}`,
      async () => {
        log(`  ${step.title}`);
        await step.run(c);
      },
      log,
      timings,
    );
  }
}
