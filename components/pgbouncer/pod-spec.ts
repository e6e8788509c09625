/**
 * The pooler's pod, a pure function of the settings and the names of what it mounts: the containers of each
 * process (./containers.ts), the pod's security context and spread, and its volumes. The component
 * (./component.ts) wires it into the Deployment.
 */
import * as path from "path";
import type * as k8s from "@pulumi/kubernetes";
import { exporterContainer, pgbouncerContainer, runVolume } from "./containers";
import { type PodNames, RUN_AS, SECRET_KEYS, processLayout, selectorLabels } from "./pod-layout";
import type { PoolerSettings } from "./settings";
import { spreadConstraints } from "./spread";
import { TLS_PATHS, TLS_SECRET_KEYS } from "./tls-ini";

/** The pod spec, a pure function of the settings and the names of what it mounts. */
export function podSpec(
  args: Pick<PoolerSettings, "workload" | "exporter" | "tls">,
  names: PodNames,
): k8s.types.input.core.v1.PodSpec {
  const { workload, exporter } = args;
  const layout = processLayout(workload, exporter);
  const tlsFiles = names.tlsSecret !== undefined || names.serverCa !== undefined;
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
    containers: [
      ...layout.map((p) => pgbouncerContainer(p, layout, args, tlsFiles)),
      ...layout.map((p) => exporterContainer(p, exporter, names.secret)),
    ],
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
      // Every process has a unix socket directory (its exporter; peering when there are several). PgBouncer
      // does not create it, so each is its own emptyDir, whose mount point the kubelet creates. A process
      // writes only its own; it connects to its peers' sockets, which a read-only mount allows.
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
