/** The local target of the load commands: the harness running the stack's rendered ini. */
import { type PooledStack, type PostgresHandle, startPooledStack } from "../harness";
import type { StackSettings } from "../../stacks/settings";
import { type Workload, initPgbench } from "./pgbench";
import type { ValidationTarget } from "./validate";

export interface LocalTarget {
  readonly stack: PooledStack;
  readonly target: ValidationTarget;
}

/** Consoles of every process: each process's own unix socket when there are several (the TCP port is shared). */
export function consolesOf(stack: PooledStack) {
  const files = stack.pgbouncer.files;
  return files.length === 1
    ? [stack.console]
    : files.map((f) => ({ ...stack.console, host: f.unixSocketDir }));
}

export async function startLocalTarget(
  settings: StackSettings,
  o: {
    workload: Workload;
    /** pgbench scale for the tpcb/select-only tables. @default 10 */
    scale?: number;
    postgres?: PostgresHandle;
    maxConnections?: number;
  },
): Promise<LocalTarget> {
  const stack = await startPooledStack(settings, {
    postgres: o.postgres,
    maxConnections: o.maxConnections,
  });
  try {
    if (o.workload !== "sleep") {
      const has = await stack.postgres.psql("SELECT to_regclass('public.pgbench_accounts') IS NOT NULL", {
        database: settings.database.name,
      });
      if (has !== "t") await initPgbench(stack.direct, o.scale ?? 10);
    }
    const n = stack.pgbouncer.processes;
    return {
      stack,
      target: {
        description:
          `local harness: ${n} PgBouncer ${stack.version} process${n > 1 ? "es" : ""} on 127.0.0.1:${stack.pgbouncer.port}, PostgreSQL 15 on ` +
          `127.0.0.1:${stack.postgres.port} (max_connections ${stack.postgres.maxConnections})`,
        pooled: stack.pooled,
        consoles: consolesOf(stack),
      },
    };
  } catch (e) {
    await stack.stop();
    throw e;
  }
}
