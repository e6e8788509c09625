/**
 * The pooler's pod, a pure function of the settings and the names of its ConfigMap and Secret: one PgBouncer
 * container and one exporter per process, the restricted security context, probes, the preStop drain, the
 * volumes. The component (./component.ts) wires it into the Deployment.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { POD_PATHS, iniFileName, socketDir } from "./pod-ini";
import type { PoolerSettings, WorkloadSettings, ExporterSettings } from "./settings";
import { spreadConstraints } from "./spread";

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

/** The restricted Pod Security Standard, for every container. */
export const CONTAINER_SECURITY: k8s.types.input.core.v1.SecurityContext = {
  runAsNonRoot: true,
  runAsUser: RUN_AS,
  runAsGroup: RUN_AS,
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

/**
 * The preStop hook: keep serving while endpoints drop the pod, then send SIGINT, PgBouncer's
 * `SHUTDOWN WAIT_FOR_SERVERS` in every release (SIGTERM means WAIT_FOR_CLIENTS since 1.23 and an immediate
 * stop before it), and wait for in-flight transactions to finish. The kubelet's SIGTERM only comes after
 * this returns, and `terminationGracePeriodSeconds` bounds the whole.
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
  readonly iniFile: string;
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
      iniFile: iniFileName(i, k),
      exporterContainer: `exporter${suffix}`,
      metricsPortName: i === 1 ? PORT_NAMES.metrics : `${PORT_NAMES.metrics}-${i}`,
      metricsPort: exporter.port + n,
      connectionKey: i === 1 ? SECRET_KEYS.exporterConnection : `${SECRET_KEYS.exporterConnection}-${i}`,
    };
  });
}

/**
 * The exporter's connection string to one process of a multi-process pod: through that process's unix
 * socket, since TCP on the shared port reaches whichever process the kernel picks.
 */
export function socketConnectionString(tcpUrl: string, dir: string): string {
  const u = new URL(tcpUrl);
  const params = new URLSearchParams(u.search);
  params.set("host", dir);
  params.set("port", u.port || "6432");
  return `postgres://${u.username}:${u.password}@${u.pathname}?${params.toString()}`;
}

/** The pod spec, a pure function of the settings and the names of the ConfigMap and Secret. */
export function podSpec(
  args: Pick<PoolerSettings, "workload" | "exporter">,
  names: { configMap: pulumi.Input<string>; secret: pulumi.Input<string>; instance: string },
): k8s.types.input.core.v1.PodSpec {
  const { workload, exporter } = args;
  const r = workload.resources;
  const layout = processLayout(workload, exporter);
  const single = layout.length === 1;
  const configMount = { name: "config", mountPath: POD_PATHS.configDir, readOnly: true };
  const authMount = { name: "auth", mountPath: POD_PATHS.authDir, readOnly: true };
  // Several processes need a unix socket directory each (peering, their exporters). PgBouncer does not
  // create it, so each is its own emptyDir, whose mount point the kubelet creates. A process writes only its
  // own; it connects to its peers' sockets, which a read-only mount allows.
  const runVolume = (i: number) => `run-${i}`;
  const runMount = (i: number, readOnly: boolean) => ({
    name: runVolume(i),
    mountPath: socketDir(i),
    readOnly,
  });
  const probe = (p: ProcessLayout): k8s.types.input.core.v1.Probe =>
    single
      ? { tcpSocket: { port: PORT_NAMES.client } }
      : // TCP on the shared port may reach another process; the socket file is this process's own.
        { exec: { command: ["test", "-S", `${socketDir(p.index)}/.s.PGSQL.${workload.port}`] } };

  const pgbouncers = layout.map((p): k8s.types.input.core.v1.Container => ({
    name: p.container,
    image: `${workload.image}:${workload.version}`,
    command: ["pgbouncer", `${POD_PATHS.configDir}/${p.iniFile}`],
    // The port is shared (so_reuseport): declared once, by the first process, for the Service.
    ...(p.index === 1
      ? { ports: [{ name: PORT_NAMES.client, containerPort: workload.port, protocol: "TCP" }] }
      : {}),
    resources: {
      requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
      limits: { cpu: r.cpuLimit, memory: r.memoryLimit },
    },
    readinessProbe: { ...probe(p), periodSeconds: 5, failureThreshold: 2 },
    livenessProbe: { ...probe(p), initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
    lifecycle: { preStop: { exec: { command: preStopCommand(workload.preStopDelaySeconds) } } },
    securityContext: CONTAINER_SECURITY,
    volumeMounts: single
      ? [configMount, authMount]
      : [configMount, authMount, ...layout.map((q) => runMount(q.index, q.index !== p.index))],
  }));
  const exporters = layout.map((p): k8s.types.input.core.v1.Container => ({
    name: p.exporterContainer,
    image: exporter.image,
    args: [`--web.listen-address=:${p.metricsPort}`, "--web.telemetry-path=/metrics"],
    env: [
      {
        name: "PGBOUNCER_EXPORTER_CONNECTION_STRING",
        valueFrom: { secretKeyRef: { name: names.secret, key: p.connectionKey } },
      },
    ],
    ports: [{ name: p.metricsPortName, containerPort: p.metricsPort, protocol: "TCP" }],
    resources: {
      requests: { cpu: "10m", memory: "16Mi" },
      limits: { cpu: "100m", memory: "64Mi" },
    },
    // No readiness probe: a failing exporter must not take the pooler out of the Service.
    livenessProbe: { tcpSocket: { port: p.metricsPortName }, periodSeconds: 20, failureThreshold: 3 },
    securityContext: CONTAINER_SECURITY,
    ...(single ? {} : { volumeMounts: [runMount(p.index, true)] }),
  }));
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: workload.terminationGracePeriodSeconds,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      fsGroup: RUN_AS,
      seccompProfile: { type: "RuntimeDefault" },
    },
    topologySpreadConstraints: spreadConstraints(workload, selectorLabels(names.instance)),
    containers: [...pgbouncers, ...exporters],
    volumes: [
      {
        name: "config",
        configMap: { name: names.configMap, items: layout.map((p) => ({ key: p.iniFile, path: p.iniFile })) },
      },
      {
        name: "auth",
        secret: {
          secretName: names.secret,
          items: [{ key: SECRET_KEYS.authFile, path: SECRET_KEYS.authFile }],
          defaultMode: 0o440,
        },
      },
      ...(single
        ? []
        : layout.map((p) => ({
            name: runVolume(p.index),
            emptyDir: { medium: "Memory", sizeLimit: "1Mi" },
          }))),
    ],
  };
}
