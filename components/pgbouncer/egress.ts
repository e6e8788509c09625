/**
 * Egress of the pooler's pods: DNS, and PostgreSQL's host and port; nothing else. A NetworkPolicy matches
 * pods and IP blocks, never DNS names, so the database's host decides what can be written:
 * - an in-cluster Service name (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`): the pods of that
 *   namespace (narrowed by `network.databasePodSelector`) on the database port, which must be the pods'
 *   port, as policies apply after the Service's translation;
 * - an IPv4 address: that address;
 * - any other name (a managed database's endpoint): `network.databaseCidrs` must give its addresses. A
 *   cluster with egress by FQDN (Cilium's `toFQDNs`, Calico's domain policies) can narrow that to the name
 *   itself; a Kubernetes NetworkPolicy cannot.
 */
import type { NetworkSettings } from "./settings";

/** A NetworkPolicy egress rule, as the Kubernetes API (and `@pulumi/kubernetes`) takes it. */
export interface EgressRule {
  readonly to: readonly Record<string, unknown>[];
  readonly ports: readonly { readonly protocol: "TCP" | "UDP"; readonly port: number }[];
}

/** What the egress rules depend on: the fields of the same names of the `network` settings. */
export type EgressSettings = Pick<
  NetworkSettings,
  "dnsNamespaceSelector" | "dnsPodSelector" | "databasePodSelector" | "databaseCidrs"
>;

export const DNS_PORT = 53;
/** The cluster's DNS domain, in the Service names the backend uses. */
export const CLUSTER_DOMAIN = "cluster.local";

/** Every name the backend may use for a Service, shortest first; the last is the one `dbHost` gives. */
export function serviceNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${CLUSTER_DOMAIN}`,
  ];
}
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Where the database is, as a policy can say it; `undefined` when only `databaseCidrs` can say it. */
export type DatabasePeer =
  | { readonly kind: "service"; readonly namespace: string }
  | { readonly kind: "ip"; readonly cidr: string }
  | { readonly kind: "cidrs"; readonly cidrs: readonly string[] };

/** Classifies `host` (the pooler runs in `namespace`, whose DNS search path makes `svc` and `svc.ns` work). */
export function databasePeer(
  host: string,
  namespace: string,
  cidrs: readonly string[] | undefined,
): DatabasePeer | undefined {
  if (cidrs && cidrs.length > 0) return { kind: "cidrs", cidrs };
  if (IPV4.test(host)) return { kind: "ip", cidr: `${host}/32` };
  const parts = host.split(".");
  if (parts.length === 1) return { kind: "service", namespace };
  const suffix = parts.slice(2).join(".");
  if (parts.length === 2 || suffix === "svc" || suffix === `svc.${CLUSTER_DOMAIN}`) {
    return { kind: "service", namespace: parts[1] };
  }
  return undefined;
}

/** The egress rules: DNS over UDP and TCP, then the database. */
export function egressRules(peer: DatabasePeer, port: number, s: EgressSettings): EgressRule[] {
  const dns: EgressRule = {
    to: [
      {
        namespaceSelector: { matchLabels: { ...s.dnsNamespaceSelector } },
        podSelector: { matchLabels: { ...s.dnsPodSelector } },
      },
    ],
    ports: [
      { protocol: "UDP", port: DNS_PORT },
      { protocol: "TCP", port: DNS_PORT },
    ],
  };
  const to =
    peer.kind === "service"
      ? [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } },
            // Any pod of the namespace is `{}`, as the API server stores it (it drops an empty matchLabels).
            podSelector: s.databasePodSelector ? { matchLabels: { ...s.databasePodSelector } } : {},
          },
        ]
      : (peer.kind === "ip" ? [peer.cidr] : peer.cidrs).map((cidr) => ({ ipBlock: { cidr } }));
  return [dns, { to, ports: [{ protocol: "TCP", port }] }];
}
