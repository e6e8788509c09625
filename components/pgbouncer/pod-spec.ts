/**
 * The pooler's pod, a pure function of the settings and the names of its ConfigMap and Secret: one PgBouncer
 * container and one exporter per process, the restricted security context, probes, the preStop drain, the
 * volumes. The component (./component.ts) wires it into the Deployment.
 */
import * as path from "path";
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { POD_PATHS, iniFileName, socketDir } from "./pod-ini";
import { tlsReloadCommand } from "./reload";
import { type PoolerSettings, type WorkloadSettings, type ExporterSettings, imageRef } from "./settings";
import { spreadConstraints } from "./spread";
import { TLS_PATHS, TLS_SECRET_KEYS } from "./tls";

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
  readonly configMap: pulumi.Input<string>;
  readonly secret: pulumi.Input<string>;
  readonly instance: string;
  /** The client certificate's `kubernetes.io/tls` Secret; set when clients are served TLS. */
  readonly tlsSecret?: pulumi.Input<string>;
  /** The CA PostgreSQL's certificate is verified against; set when the stack names one. */
  readonly serverCa?: MountedKey;
}

/** The pod spec, a pure function of the settings and the names of what it mounts. */
export function podSpec(
  args: Pick<PoolerSettings, "workload" | "exporter" | "tls">,
  names: PodNames,
): k8s.types.input.core.v1.PodSpec {
  const { workload, exporter, tls } = args;
  const r = workload.resources;
  const layout = processLayout(workload, exporter);
  const single = layout.length === 1;
  const configMount = { name: "config", mountPath: POD_PATHS.configDir, readOnly: true };
  const authMount = { name: "auth", mountPath: POD_PATHS.authDir, readOnly: true };
  const tlsFiles = names.tlsSecret !== undefined || names.serverCa !== undefined;
  const tlsMounts = tlsFiles ? [{ name: "tls", mountPath: TLS_PATHS.dir, readOnly: true }] : [];
  // Every process has a unix socket directory (its exporter; peering when there are several). PgBouncer
  // does not create it, so each is its own emptyDir, whose mount point the kubelet creates. A process
  // writes only its own; it connects to its peers' sockets, which a read-only mount allows.
  const runVolume = (i: number) => `run-${i}`;
  // `readOnly: false` is left out, as the API server drops it: the render shows what the cluster stores.
  const runMount = (i: number, readOnly: boolean) => ({
    name: runVolume(i),
    mountPath: socketDir(i),
    ...(readOnly ? { readOnly } : {}),
  });
  const probe = (p: ProcessLayout): k8s.types.input.core.v1.Probe =>
    single
      ? { tcpSocket: { port: PORT_NAMES.client } }
      : // TCP on the shared port may reach another process; the socket file is this process's own.
        { exec: { command: ["test", "-S", `${socketDir(p.index)}/.s.PGSQL.${workload.port}`] } };

  const ini = (p: ProcessLayout) => `${POD_PATHS.configDir}/${p.iniFile}`;
  const pgbouncers = layout.map((p): k8s.types.input.core.v1.Container => ({
    name: p.container,
    image: imageRef(`${workload.image}:${workload.version}`, workload.digest),
    // With TLS files, a small sh loop runs PgBouncer and reloads it when the kubelet updates them (a renewed
    // certificate, a new server CA; ./reload.ts); the preStop hook's and the kubelet's signals reach
    // PgBouncer through it.
    command: tlsFiles
      ? tlsReloadCommand(ini(p), TLS_PATHS.dir, tls.reloadCheckSeconds)
      : ["pgbouncer", ini(p)],
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
    volumeMounts: [
      configMount,
      authMount,
      ...tlsMounts,
      ...layout.map((q) => runMount(q.index, q.index !== p.index)),
    ],
  }));
  const exporters = layout.map((p): k8s.types.input.core.v1.Container => ({
    name: p.exporterContainer,
    image: imageRef(exporter.image, exporter.digest),
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
    volumeMounts: [runMount(p.index, true)],
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
      ...(tlsFiles ? [{ name: "tls", projected: { sources: tlsSources(names), defaultMode: 0o440 } }] : []),
      ...layout.map((p) => ({
        name: runVolume(p.index),
        emptyDir: { medium: "Memory", sizeLimit: "1Mi" },
      })),
    ],
  };
}

/** The projected TLS volume's sources: the certificate and key, and the server CA as `server-ca.crt`. */
function tlsSources(names: PodNames): k8s.types.input.core.v1.VolumeProjection[] {
  const cert =
    names.tlsSecret !== undefined
      ? [
          {
            secret: {
              name: names.tlsSecret,
              items: [
                { key: TLS_SECRET_KEYS.cert, path: path.basename(TLS_PATHS.certFile) },
                { key: TLS_SECRET_KEYS.key, path: path.basename(TLS_PATHS.keyFile) },
              ],
            },
          },
        ]
      : [];
  const ca = names.serverCa;
  const caItems = ca ? [{ key: ca.key, path: path.basename(TLS_PATHS.serverCaFile) }] : [];
  const server =
    ca === undefined
      ? []
      : ca.kind === "configMap"
        ? [{ configMap: { name: ca.name, items: caItems } }]
        : [{ secret: { name: ca.name, items: caItems } }];
  return [...cert, ...server];
}
