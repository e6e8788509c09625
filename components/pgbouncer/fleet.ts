/**
 * The pooler as a fleet of peers: a StatefulSet whose pods keep their names (`pgbouncer-<ordinal>`) and, through
 * the headless Service `pgbouncer-peers`, their DNS names, so that every PgBouncer process has a `peer_id` unique
 * in the fleet and every process lists every other in `[peers]`. A cancel request lands on whichever replica the
 * client Service picks; the key names the peer that owns the query, and PgBouncer forwards it there.
 */
import { CLUSTER_DOMAIN } from "./egress";

/** The StatefulSet's fixed name: its pods are `pgbouncer-0`, `pgbouncer-1`, … */
export const STATEFULSET_NAME = "pgbouncer";
/**
 * The headless Service that gives every pod a DNS name for its peers. It publishes pods that are not ready, and
 * pods that are terminating: a draining pod still owns queries whose cancels must reach it.
 */
export const PEERS_SERVICE_NAME = "pgbouncer-peers";
/**
 * The headless Service that selects the canary (pod 0) and publishes it only while it is ready: the other pods
 * resolve its name before they apply a change (pgbouncer-pod.sh).
 */
export const CANARY_SERVICE_NAME = "pgbouncer-canary";

/** The name of the pod of `ordinal`. */
export function podName(ordinal: number): string {
  return `${STATEFULSET_NAME}-${ordinal}`;
}

/** The pod of `ordinal`'s DNS name, through the peers Service. */
export function podDnsName(ordinal: number, namespace: string): string {
  return `${podName(ordinal)}.${PEERS_SERVICE_NAME}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/** The canary Service's DNS name. */
export function canaryDnsName(namespace: string): string {
  return `${CANARY_SERVICE_NAME}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/** `peer_id` of process `process` (1-based) of the pod of `ordinal`: unique across the fleet, from 1. */
export function peerId(ordinal: number, process: number, processesPerPod: number): number {
  return ordinal * processesPerPod + process;
}

/** One entry of `[peers]`. */
export interface Peer {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

/**
 * Every process of every pod, by its pod's DNS name and the client port, in `peer_id` order. A process of a
 * multi-process pod reached over TCP may be any of that pod's processes (they share the port); the one that
 * takes the request forwards it over the pod's unix sockets, where each process's script lists its own pod's
 * processes (PgBouncer forwards a cancel up to three times: the key carries a TTL).
 */
export function fleetPeers(
  workload: { readonly replicas: number; readonly processesPerPod: number; readonly port: number },
  namespace: string,
): Peer[] {
  const peers: Peer[] = [];
  for (let ordinal = 0; ordinal < workload.replicas; ordinal++) {
    for (let process = 1; process <= workload.processesPerPod; process++) {
      peers.push({
        id: peerId(ordinal, process, workload.processesPerPod),
        host: podDnsName(ordinal, namespace),
        port: workload.port,
      });
    }
  }
  return peers;
}
