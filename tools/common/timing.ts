/** Timing the parts of a long run, for its report. */

/** Seconds since `since` (a `Date.now()`), as the reports print them. */
export function secondsSince(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(0)} s`;
}

/** The seconds each timed part took, in the order they ran. */
export type Timings = [name: string, seconds: number][];

/**
 * Runs `f` as the part `name`: logs the name, then `name: passed in N s`, or how long it ran before it
 * failed (and rethrows); records the seconds in `timings` when given.
 */
export async function timed<T>(
  name: string,
  f: () => Promise<T>,
  log: (line: string) => void,
  timings?: Timings,
): Promise<T> {
  const started = Date.now();
  log(`\n${name}`);
  try {
    const result = await f();
    const s = (Date.now() - started) / 1000;
    timings?.push([name, s]);
    log(`${name}: passed in ${s.toFixed(1)} s`);
    return result;
  } catch (e) {
    log(`${name}: FAILED after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    throw e;
  }
}
