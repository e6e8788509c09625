/**
 * What the pooler names in the cluster but does not own: its namespace, PostgreSQL's CA (a ConfigMap or
 * Secret) and an existing certificate's Secret. The program checks each before it registers anything
 * (components/providers/preflight.ts), so a missing one fails the preview in seconds instead of leaving new
 * pods waiting on a missing volume until the rollout times out.
 */
import type { ClusterObjectRef } from "../common";
import { TLS_SECRET_KEYS } from "./tls-ini";
import type { TlsSettings } from "./tls-settings";

export function poolerReferences(s: {
  readonly namespace: string;
  readonly tls: TlsSettings;
}): ClusterObjectRef[] {
  const refs: ClusterObjectRef[] = [
    {
      kind: "Namespace",
      name: s.namespace,
      setting: "namespace",
      neededBy: "every object of the pooler goes there",
    },
  ];
  const ca = s.tls.serverCa;
  if (ca !== undefined && ca.source !== "vault") {
    refs.push({
      kind: ca.source === "configmap" ? "ConfigMap" : "Secret",
      namespace: s.namespace,
      name: ca.name,
      keys: [ca.key],
      setting: "tls.serverCa.name",
      neededBy: "the pooler's pods mount it (PostgreSQL's CA) and cannot start without it",
    });
  }
  const cert = s.tls.certificate;
  if (cert?.source === "secret") {
    refs.push({
      kind: "Secret",
      namespace: s.namespace,
      name: cert.name,
      keys: [TLS_SECRET_KEYS.cert, TLS_SECRET_KEYS.key, TLS_SECRET_KEYS.ca],
      setting: "tls.certificate.name",
      neededBy: "the pooler's pods mount it (the certificate they serve) and cannot start without it",
    });
  }
  return refs;
}
