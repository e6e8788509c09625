/**
 * How the pooler's pod is laid out, without Kubernetes types: its processes (one PgBouncer and one exporter
 * each) with their names, ports and files, the labels that select it, the preStop drain, and the names of
 * what it mounts. ./pod-spec.ts builds the pod from these.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { ExporterSettings, WorkloadSettings } from "./settings";

/** Container port names, shared by the Service, the probes and the scrape config. */
export const PORT_NAMES = { client: "pgbouncer", metrics: "metrics" } as const;
/** Secret keys. */
export const SECRET_KEYS = {
  authFile: "userlist.txt",
  exporterConnection: "exporter-connection-string",
} as const;
/** One uid/gid for both containers; neither image needs a particular one. */
export const RUN_AS = 10001;

/** Labels on every object; the first two also select the pods. */
export function selectorLabels(name: string): Record<string, string> {
  return { "app.kubernetes.io/name": "pgbouncer", "app.kubernetes.io/instance": name };
}

/**
 * The preStop hook: keep serving while endpoints drop the pod, then send INT to the container's script
 * (PID 1), which drains PgBouncer (./pgbouncer-pod.sh: clients served for `drainSeconds`, cancels forwarded
 * to it, then running transactions finish), and wait until it has exited. The kubelet's SIGTERM only comes
 * after this returns, and `terminationGracePeriodSeconds` bounds the whole.
 */
export function preStopCommand(delaySeconds: number): string[] {
  return [
    "/bin/sh",
    "-c",
    `sleep ${delaySeconds}; kill -INT 1; while kill -0 1 2>/dev/null; do sleep 1; done`,
  ];
}

/** One PgBouncer process of the pod and its exporter: names, ports, files. */
export interface ProcessLayout {
  /** 1-based. */
  readonly index: number;
  readonly container: string;
  readonly exporterContainer: string;
  readonly metricsPortName: string;
  readonly metricsPort: number;
  readonly connectionKey: string;
}

/**
 * The processes of a pod. One process keeps the plain names (`pgbouncer`, `exporter`, port `metrics`);
 * several get `-<i>` suffixes, and exporter ports count up from `exporter.port`.
 */
export function processLayout(workload: WorkloadSettings, exporter: ExporterSettings): ProcessLayout[] {
  const k = workload.processesPerPod;
  return Array.from({ length: k }, (_, n) => {
    const i = n + 1;
    const suffix = k === 1 ? "" : `-${i}`;
    return {
      index: i,
      container: `pgbouncer${suffix}`,
      exporterContainer: `exporter${suffix}`,
      metricsPortName: i === 1 ? PORT_NAMES.metrics : `${PORT_NAMES.metrics}-${i}`,
      metricsPort: exporter.port + n,
      connectionKey: i === 1 ? SECRET_KEYS.exporterConnection : `${SECRET_KEYS.exporterConnection}-${i}`,
    };
  });
}

/**
 * The exporter's connection string to one process: through that process's unix socket. A unix socket is
 * never asked for TLS (PgBouncer exempts it from `client_tls_sslmode`), cannot be reached from the network,
 * keeps the exporter reporting when the client certificate is broken, and reaches exactly its own process
 * where TCP on a shared port (`so_reuseport`) reaches whichever the kernel picks.
 */
export function socketConnectionString(tcpUrl: string, dir: string): string {
  const u = new URL(tcpUrl);
  const params = new URLSearchParams(u.search);
  params.set("host", dir);
  params.set("port", u.port || "6432");
  return `postgres://${u.username}:${u.password}@${u.pathname}?${params.toString()}`;
}

/** A ConfigMap or Secret key the pod mounts as one file. */
export interface MountedKey {
  readonly kind: "configMap" | "secret";
  readonly name: pulumi.Input<string>;
  readonly key: string;
}

/** The names of what the pod mounts. */
export interface PodNames {
  /** The shared ini's ConfigMap. */
  readonly configMap: pulumi.Input<string>;
  /** The auth file's Secret. */
  readonly authSecret: pulumi.Input<string>;
  /** The exporters' connection strings' Secret. */
  readonly exporterSecret: pulumi.Input<string>;
  readonly instance: string;
  /** The canary Service's DNS name, or "" when the pods apply changes at once (one replica). */
  readonly canary: string;
  /** Logins the pods' server-login check opens per process (`serverLoginChecks`). */
  readonly checkLogins: number;
  /** The client certificate's `kubernetes.io/tls` Secret; set when clients are served TLS. */
  readonly tlsSecret?: pulumi.Input<string>;
  /** The CA PostgreSQL's certificate is verified against; set when the stack names one. */
  readonly serverCa?: MountedKey;
}
