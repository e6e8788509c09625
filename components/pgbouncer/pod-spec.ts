/**
 * The pooler's pod, a pure function of the settings and the names of what it mounts: the containers of each
 * process (./containers.ts), the pod's security context and spread, and its volumes. The component
 * (./component.ts) wires it into the StatefulSet.
 */
import type * as k8s from "@pulumi/kubernetes";
import { appliedVolume, exporterContainer, pgbouncerContainer, runVolume } from "./containers";
import { AUTH_FILE, INI_FILE } from "./pod-ini";
import { type PodNames, RUN_AS, processLayout, selectorLabels } from "./pod-layout";
import type { PoolerSettings } from "./settings";
import { spreadConstraints } from "./spread";
import { TLS_FILE_NAMES, TLS_SECRET_KEYS } from "./tls-ini";

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
      ...layout.map((p) =>
        pgbouncerContainer(p, layout, args, tlsFiles, {
          canary: names.canary,
          checkLogins: names.checkLogins,
        }),
      ),
      ...layout.map((p) => exporterContainer(p, exporter, names.exporterSecret)),
    ],
    volumes: [
      // Whole folders, never subPath: the kubelet updates them in place, and the script reloads a change.
      { name: "config", configMap: { name: names.configMap, items: [{ key: INI_FILE, path: INI_FILE }] } },
      {
        name: "auth",
        secret: {
          secretName: names.authSecret,
          items: [{ key: AUTH_FILE, path: AUTH_FILE }],
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
      // Each script's validated copies of the mounts (a generation or two of an ini, an auth file and the TLS
      // files) and its check's log.
      ...layout.map((p) => ({
        name: appliedVolume(p.index),
        emptyDir: { medium: "Memory", sizeLimit: "4Mi" },
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
                { key: TLS_SECRET_KEYS.cert, path: TLS_FILE_NAMES.cert },
                { key: TLS_SECRET_KEYS.key, path: TLS_FILE_NAMES.key },
              ],
            },
          },
        ]
      : [];
  const ca = names.serverCa;
  const caItems = ca ? [{ key: ca.key, path: TLS_FILE_NAMES.serverCa }] : [];
  const server =
    ca === undefined
      ? []
      : ca.kind === "configMap"
        ? [{ configMap: { name: ca.name, items: caItems } }]
        : [{ secret: { name: ca.name, items: caItems } }];
  return [...cert, ...server];
}
