/**
 * npm run validate -- --stack prod --local [--clients 100 --duration 300]
 * npm run validate -- --stack prod --cluster [--namespace clipper]
 */
import * as fs from "node:fs";
import { exitOnSignals, localPgBouncerVersion } from "../harness";
import { startLocalTarget } from "./local";
import { WORKLOADS, type Workload } from "./pgbench";
import { portForward } from "./port-forward";
import { listStacks } from "../../stacks/stack-file";
import { type ValidationTarget, formatReport, runValidation } from "./validate";
import { loadStackSettings } from "../../stacks/settings";
import { Args, UsageError, runMain } from "../common";

const USAGE = `usage: npm run validate -- --stack <${listStacks().join("|")}> (--local | --cluster) [options]

  --clients N          concurrent pgbench clients (default 100, the spec's 100 users)
  --duration S         seconds of load (default 300, the spec's 5 minutes)
  --rate-per-client R  transactions per second per client, pgbench --rate = clients x R
                       (default 10: a busy user; 0 = flat out, which fills any pool)
  --workload W         ${WORKLOADS.join(" | ")} (default sleep, locally and on a cluster: an
                       application-like transaction that needs no tables, BEGIN; pg_sleep(1-10 ms); END;
                       tpcb adds pgbench's hot-row contention: 10 branch rows per scale 10)
  --warmup S           seconds of the same load before the judged run, reported but not judged, so the
                       judged run starts with a warm pool (default 5; 0 judges a cold start)
  --settle S           seconds the pool may take to return to its baseline (default 15)
  --json FILE          also write the full report as JSON

  --local              start PostgreSQL 15 and the PgBouncer release the stack deploys on 127.0.0.1, from its rendered ini
  --scale N            local pgbench scale for tpcb and select-only (default 10)

  --cluster            go through kubectl port-forward to the stack's Service (one pod serves every client)
  --namespace NS       default: the stack's namespace
  --service NAME       default: pgbouncer
  --context CTX        kubectl context
  Cluster credentials come from the environment: PGBOUNCER_APP_USER, PGBOUNCER_APP_PASSWORD (the
  application user), PGBOUNCER_STATS_PASSWORD (the exporter's stats user).

Exit code: 0 pass, 1 fail, 2 usage error.`;

runMain(USAGE, async () => {
  const a = new Args(process.argv.slice(2));
  if (a.flag("help")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const stack = a.string("stack");
  const local = a.flag("local");
  const cluster = a.flag("cluster");
  if (local === cluster) throw new UsageError("give exactly one of --local and --cluster");
  const clients = a.int("clients", 100, 1, 10000);
  const durationSeconds = a.int("duration", 300, 1, 86400);
  const ratePerClient = a.int("rate-per-client", 10, 0, 100000);
  const workload = a.oneOf<Workload>("workload", "sleep", WORKLOADS);
  const settleSeconds = a.int("settle", 15, 0, 3600);
  const warmupSeconds = a.int("warmup", 5, 0, 3600);
  const json = a.optional("json");
  const scale = a.int("scale", 10, 1, 1000);
  const namespace = a.optional("namespace");
  const service = a.string("service", "pgbouncer");
  const context = a.optional("context");
  a.done();
  const settings = loadStackSettings(stack);
  exitOnSignals();

  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    let target: ValidationTarget;
    if (local) {
      process.stderr.write(`starting the local harness for stack ${stack} ...\n`);
      const t = await startLocalTarget(settings, { workload, scale });
      cleanups.push(() => t.stack.stop());
      target = {
        ...t.target,
        description: `${t.target.description}, PgBouncer ${await localPgBouncerVersion()}`,
      };
    } else {
      const env = (k: string) => {
        const v = process.env[k];
        if (!v) throw new UsageError(`${k} must be set for --cluster`);
        return v;
      };
      const user = env("PGBOUNCER_APP_USER");
      const password = env("PGBOUNCER_APP_PASSWORD");
      const statsPassword = env("PGBOUNCER_STATS_PASSWORD");
      const ns = namespace ?? settings.namespace;
      const pf = await portForward({ namespace: ns, service, remotePort: settings.workload.port, context });
      cleanups.push(() => pf.stop());
      const host = "127.0.0.1";
      target = {
        description:
          `kubectl port-forward svc/${service} -n ${ns} (one pod; with processesPerPod ` +
          `${settings.workload.processesPerPod} > 1 each sample reaches one random process)`,
        pooled: { host, port: pf.port, user, password, database: settings.database.name },
        consoles: [
          {
            host,
            port: pf.port,
            user: settings.exporter.statsUser,
            password: statsPassword,
            database: "pgbouncer",
          },
        ],
      };
    }
    const tty = process.stdout.isTTY;
    const every = tty ? 1 : durationSeconds <= 60 ? 5 : 10;
    const report = await runValidation({
      settings,
      target,
      clients,
      durationSeconds,
      workload,
      ratePerClient,
      settleSeconds,
      warmupSeconds,
      onProgress: (line, t) => {
        if (tty) process.stdout.write(`\r${line}`);
        else if (Math.round(t) % every === 0) process.stdout.write(`${line}\n`);
      },
    });
    if (tty) process.stdout.write("\n");
    process.stdout.write(formatReport(report, stack));
    if (json) fs.writeFileSync(json, JSON.stringify(report, null, 2) + "\n");
    return report.verdict.pass ? 0 : 1;
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
});
