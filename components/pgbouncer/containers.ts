/**
 * The containers of the pooler's pod, per PgBouncer process: PgBouncer under its script (./pgbouncer-pod.sh:
 * reloads, readiness, the drain) and its exporter sidecar, both under the restricted security context.
 * ./pod-spec.ts puts them in the pod with the volumes they mount.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { CURRENT_DIR, POD_PATHS, socketDir } from "./pod-ini";
import { PORT_NAMES, type ProcessLayout, RUN_AS, preStopCommand } from "./pod-layout";
import { POD_NAME_ENV, podScriptCommand, podScriptEnv, readyFile } from "./pod-script";
import type { ExporterSettings, PoolerSettings } from "./settings";
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

/** The volume of process `i`'s validated generations (its script's, at the same path in every container). */
export function appliedVolume(i: number): string {
  return `applied-${i}`;
}

// `readOnly: false` is left out, as the API server drops it: the render shows what the cluster stores.
function runMount(i: number, readOnly: boolean): k8s.types.input.core.v1.VolumeMount {
  return { name: runVolume(i), mountPath: socketDir(i), ...(readOnly ? { readOnly } : {}) };
}

/** What the PgBouncer containers' script is told that the settings do not say. */
export interface ScriptContext {
  /** The canary Service's DNS name, or "" when every pod applies a change at once (one replica). */
  readonly canary: string;
  /** Logins the server-login check opens (`serverLoginChecks`). */
  readonly checkLogins: number;
}

/** The PgBouncer container of process `p` of a pod whose processes are `layout`. */
export function pgbouncerContainer(
  p: ProcessLayout,
  layout: readonly ProcessLayout[],
  s: Pick<PoolerSettings, "workload">,
  tlsFiles: boolean,
  ctx: ScriptContext,
): k8s.types.input.core.v1.Container {
  const { workload } = s;
  const r = workload.resources;
  const sources = [POD_PATHS.configDir, POD_PATHS.authDir, ...(tlsFiles ? [POD_PATHS.tlsDir] : [])];
  const env = podScriptEnv({
    process: p.index,
    processes: layout.length,
    listenAddr: "0.0.0.0",
    port: workload.port,
    sources,
    current: CURRENT_DIR,
    socketDir: socketDir(p.index),
    checkSeconds: workload.reloadCheckSeconds,
    canary: ctx.canary,
    canaryHoldSeconds: workload.canaryHoldSeconds,
    failureSeconds: workload.serverLoginFailureSeconds,
    drainSeconds: workload.drainSeconds,
    checkLogins: ctx.checkLogins,
  });
  return {
    name: p.container,
    image: imageRef(`${workload.image}:${workload.version}`, workload.digest),
    // The script runs PgBouncer, reloads it on a validated change of the mounts, keeps the readiness file and
    // drains it on the preStop hook's INT (./pgbouncer-pod.sh).
    command: podScriptCommand(),
    env: [
      { name: POD_NAME_ENV, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      ...Object.entries(env).map(([name, value]) => ({ name, value })),
    ],
    // The port is shared (so_reuseport): declared once, by the first process, for the Service.
    ...(p.index === 1
      ? { ports: [{ name: PORT_NAMES.client, containerPort: workload.port, protocol: "TCP" }] }
      : {}),
    resources: {
      requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
      limits: { cpu: r.cpuLimit, memory: r.memoryLimit },
    },
    // Ready: the script's file (listening, no unexplained server-login failure, not draining). Live: this
    // process's own socket (TCP on a shared port may reach another process).
    readinessProbe: {
      exec: { command: ["test", "-e", readyFile(socketDir(p.index))] },
      periodSeconds: 5,
      failureThreshold: 1,
    },
    livenessProbe: {
      exec: { command: ["test", "-S", `${socketDir(p.index)}/.s.PGSQL.${workload.port}`] },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      failureThreshold: 6,
    },
    lifecycle: { preStop: { exec: { command: preStopCommand(workload.preStopDelaySeconds) } } },
    securityContext: CONTAINER_SECURITY,
    volumeMounts: [
      { name: "config", mountPath: POD_PATHS.configDir, readOnly: true },
      { name: "auth", mountPath: POD_PATHS.authDir, readOnly: true },
      ...(tlsFiles ? [{ name: "tls", mountPath: POD_PATHS.tlsDir, readOnly: true }] : []),
      { name: appliedVolume(p.index), mountPath: POD_PATHS.appliedDir },
      // Every process's socket directory: its own to write, its peers' to connect to (cancel forwarding).
      ...layout.map((q) => runMount(q.index, q.index !== p.index)),
    ],
  };
}

/**
 * The exporter sidecar of process `p`: it reads its connection string from the exporter's Secret `secret`
 * (an environment variable, read at start: the Secret is replaced, and the pod rolls, when it changes) and
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
