import type * as pulumi from "@pulumi/pulumi";

/**
 * The value of an Output, once the mock engine has resolved it. An unknown never resolves: do not await one
 * from a preview run.
 */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}
