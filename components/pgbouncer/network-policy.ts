/**
 * The pooler's NetworkPolicy spec, as plain JSON: the client port only from the backend's pods and from the
 * pooler's own pods (a peer forwarding a cancel request), the metrics port only from Prometheus, nothing else
 * in; out, DNS, PostgreSQL's port, and the pooler's own pods on the client port (./egress.ts).
 */
import { databasePeer, egressRules } from "./egress";
import { selectorLabels } from "./pod-layout";
import type { PoolerSettings } from "./settings";

/** A NetworkPolicy's `spec` as the Kubernetes API (and `@pulumi/kubernetes`) takes it. */
export interface NetworkPolicySpec {
  podSelector: { matchLabels: Record<string, string> };
  policyTypes: ("Ingress" | "Egress")[];
  egress: { to: Record<string, unknown>[]; ports: { protocol: "TCP" | "UDP"; port: number }[] }[];
  ingress: {
    from: Record<string, unknown>[];
    ports: { protocol: "TCP"; port: number; endPort?: number }[];
  }[];
}

/** The spec of the NetworkPolicy of the pooler `name` in `namespace`. */
export function networkPolicySpec(
  name: string,
  args: Pick<PoolerSettings, "workload" | "exporter" | "network" | "database">,
  namespace: string,
): NetworkPolicySpec {
  const peer = databasePeer(args.database.host, namespace, args.network.databaseCidrs);
  if (peer === undefined) {
    // The settings refuse this (network.databaseCidrs); a caller that skipped them gets no open egress.
    throw new Error(
      `database host "${args.database.host}" needs network.databaseCidrs for the egress policy`,
    );
  }
  return {
    podSelector: { matchLabels: selectorLabels(name) },
    policyTypes: ["Ingress", "Egress"],
    egress: [
      ...egressRules(peer, args.database.port, args.network).map((r) => ({
        to: [...r.to],
        ports: [...r.ports],
      })),
      // A cancel request for a query another replica owns, forwarded to it (one packet, in the clear).
      {
        to: [{ podSelector: { matchLabels: selectorLabels(name) } }],
        ports: [{ protocol: "TCP", port: args.workload.port }],
      },
    ],
    ingress: [
      {
        from: [
          { podSelector: { matchLabels: { ...args.network.backendPodSelector } } },
          { podSelector: { matchLabels: selectorLabels(name) } },
        ],
        ports: [{ protocol: "TCP", port: args.workload.port }],
      },
      {
        from: [
          {
            namespaceSelector: { matchLabels: { ...args.network.prometheusNamespaceSelector } },
            podSelector: { matchLabels: { ...args.network.prometheusPodSelector } },
          },
        ],
        ports: [
          {
            protocol: "TCP",
            port: args.exporter.port,
            // one exporter per PgBouncer process, on consecutive ports
            ...(args.workload.processesPerPod > 1
              ? { endPort: args.exporter.port + args.workload.processesPerPod - 1 }
              : {}),
          },
        ],
      },
    ],
  };
}
