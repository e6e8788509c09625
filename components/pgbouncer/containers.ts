/**
 * The containers of the pooler's pod, per PgBouncer process: PgBouncer itself (probes, the preStop drain,
 * the TLS reload loop) and its exporter sidecar, both under the restricted security context. ./pod-spec.ts
 * puts them in the pod with the volumes they mount.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { POD_PATHS, socketDir } from "./pod-ini";
import { PORT_NAMES, type ProcessLayout, RUN_AS, preStopCommand } from "./pod-layout";
import { tlsReloadCommand } from "./reload";
import type { ExporterSettings, PoolerSettings } from "./settings";
import { TLS_PATHS } from "./tls-ini";

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

/** `image:tag`, or `image:tag@digest` when a digest is pinned. */
export function imageRef(imageWithTag: string, digest: string | undefined): string {
  return digest === undefined ? imageWithTag : `${imageWithTag}@${digest}`;
}

/** The volume of process `i`'s unix socket directory. */
export function runVolume(i: number): string {
  return `run-${i}`;
}

// `readOnly: false` is left out, as the API server drops it: the render shows what the cluster stores.
function runMount(i: number, readOnly: boolean): k8s.types.input.core.v1.VolumeMount {
  return { name: runVolume(i), mountPath: socketDir(i), ...(readOnly ? { readOnly } : {}) };
}

/** The PgBouncer container of process `p` of a pod whose processes are `layout`. */
export function pgbouncerContainer(
  p: ProcessLayout,
  layout: readonly ProcessLayout[],
  s: Pick<PoolerSettings, "workload" | "tls">,
  tlsFiles: boolean,
): k8s.types.input.core.v1.Container {
  const { workload, tls } = s;
  const r = workload.resources;
  const ini = `${POD_PATHS.configDir}/${p.iniFile}`;
  const probe: k8s.types.input.core.v1.Probe =
    layout.length === 1
      ? { tcpSocket: { port: PORT_NAMES.client } }
      : // TCP on the shared port may reach another process; the socket file is this process's own.
        { exec: { command: ["test", "-S", `${socketDir(p.index)}/.s.PGSQL.${workload.port}`] } };
  return {
    name: p.container,
    image: imageRef(`${workload.image}:${workload.version}`, workload.digest),
    // With TLS files, a small sh loop runs PgBouncer and reloads it when the kubelet updates them (a renewed
    // certificate, a new server CA; ./reload.ts); the preStop hook's and the kubelet's signals reach
    // PgBouncer through it.
    command: tlsFiles ? tlsReloadCommand(ini, TLS_PATHS.dir, tls.reloadCheckSeconds) : ["pgbouncer", ini],
    // The port is shared (so_reuseport): declared once, by the first process, for the Service.
    ...(p.index === 1
      ? { ports: [{ name: PORT_NAMES.client, containerPort: workload.port, protocol: "TCP" }] }
      : {}),
    resources: {
      requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
      limits: { cpu: r.cpuLimit, memory: r.memoryLimit },
    },
    readinessProbe: { ...probe, periodSeconds: 5, failureThreshold: 2 },
    livenessProbe: { ...probe, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
    lifecycle: { preStop: { exec: { command: preStopCommand(workload.preStopDelaySeconds) } } },
    securityContext: CONTAINER_SECURITY,
    volumeMounts: [
      { name: "config", mountPath: POD_PATHS.configDir, readOnly: true },
      { name: "auth", mountPath: POD_PATHS.authDir, readOnly: true },
      ...(tlsFiles ? [{ name: "tls", mountPath: TLS_PATHS.dir, readOnly: true }] : []),
      // Every process's socket directory: its own to write, its peers' to connect to (cancel forwarding).
      ...layout.map((q) => runMount(q.index, q.index !== p.index)),
    ],
  };
}

/**
 * The exporter sidecar of process `p`: it reads its connection string from the auth Secret `secret` and
 * reaches its own process through that process's socket directory.
 */
export function exporterContainer(
  p: ProcessLayout,
  exporter: ExporterSettings,
  secret: pulumi.Input<string>,
): k8s.types.input.core.v1.Container {
  return {
    name: p.exporterContainer,
    image: imageRef(exporter.image, exporter.digest),
    args: [`--web.listen-address=:${p.metricsPort}`, "--web.telemetry-path=/metrics"],
    env: [
      {
        name: "PGBOUNCER_EXPORTER_CONNECTION_STRING",
        valueFrom: { secretKeyRef: { name: secret, key: p.connectionKey } },
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
  };
}
