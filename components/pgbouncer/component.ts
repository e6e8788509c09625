import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { SecretInputs } from "../common";
import type { PoolerCredentials } from "../credentials";
import { ROLLING_SURGE } from "./budget";
import { type ClientCertificate, clientCertificate, serverCa } from "./certificates";
import { serviceNames } from "./egress";
import { renderIni } from "./ini";
import { type CaRef, DEPLOYMENT_NAME, SERVICE_NAME } from "./names";
import { networkPolicySpec } from "./network-policy";
import { podIniInputs, socketDir } from "./pod-ini";
import { PORT_NAMES, SECRET_KEYS, processLayout, selectorLabels, socketConnectionString } from "./pod-layout";
import { podSpec } from "./pod-spec";
import type { PoolerSettings } from "./settings";

export interface PgBouncerArgs extends PoolerSettings {
  /** Namespace of every object; it must exist. */
  readonly namespace: string;
  /** Auth file, exporter connection string (both secrets) and the ini's auth settings. */
  readonly credentials: PoolerCredentials;
  /**
   * Extra pod template annotations, e.g. `prometheus.io/*` for a plain Prometheus.
   * @default none
   */
  readonly podAnnotations?: Readonly<Record<string, string>>;
  /**
   * The settings that came from Pulumi secrets and go into resource inputs: they are passed on as
   * `pulumi.secret` (the Vault certificate's mount, role and validity). @default none
   */
  readonly secretInputs?: SecretInputs;
  /**
   * The PEM of a Vault-held server CA (`tls.serverCa.source: vault`), read and checked before anything was
   * registered (`readServerCa`). Required with that source. @default none
   */
  readonly serverCaPem?: string;
}

function commonLabels(name: string, version: string): Record<string, string> {
  return {
    ...selectorLabels(name),
    "app.kubernetes.io/version": version,
    "app.kubernetes.io/component": "connection-pooler",
    "app.kubernetes.io/part-of": "clipper",
    "app.kubernetes.io/managed-by": "pulumi",
  };
}

/**
 * PgBouncer in front of PostgreSQL: Deployment (a PgBouncer container and an exporter sidecar per process,
 * `processesPerPod`), ConfigMap with the rendered ini of each process, Secret with the auth file and the
 * exporters' connection strings, Service `pgbouncer`, PodDisruptionBudget and NetworkPolicy, and the TLS
 * objects (./certificates.ts): the certificate's Secret `pgbouncer-tls` and its CA's ConfigMap. The ini's
 * ConfigMap and the auth Secret are auto-named and immutable, so any change to them replaces them under a new
 * name and rolls the pods one at a time; the stable-named TLS objects are updated in place. The pod (./pod-spec.ts) and the NetworkPolicy's spec (./network-policy.ts) are pure functions.
 */
export class PgBouncer extends pulumi.ComponentResource {
  /** In-cluster DNS name of the Service. */
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly metricsPort: pulumi.Output<number>;
  readonly serviceName: pulumi.Output<string>;
  /** The rendered pgbouncer.ini of the first (or only) process; it contains no secret. */
  readonly ini: string;
  /** The rendered ini of every process of a pod, in process order. */
  readonly inis: readonly string[];
  /** Names of the exporters' container ports, one per process (for the scrape config). */
  readonly metricsPortNames: readonly string[];
  /** Labels that select the pooler's pods (for scraping and policies). */
  readonly podSelector: Readonly<Record<string, string>>;
  readonly deployment: k8s.apps.v1.Deployment;
  /** The client-facing certificate; undefined when `tls.clientSslMode` is `disable`. */
  readonly certificate?: ClientCertificate;
  /** Where the CA PostgreSQL is verified against lives; undefined when the stack names none. */
  readonly serverCa?: { readonly ca: CaRef; readonly caBundle?: pulumi.Output<string> };

  constructor(name: string, args: PgBouncerArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("clipper:pgbouncer:PgBouncer", name, {}, opts);
    const labels = commonLabels(name, args.workload.version);
    const meta = { namespace: args.namespace, labels };

    const layout = processLayout(args.workload, args.exporter);
    this.inis = podIniInputs(args, args.credentials.iniAuth).map(renderIni);
    this.ini = this.inis[0];
    this.metricsPortNames = layout.map((p) => p.metricsPortName);
    this.podSelector = selectorLabels(name);

    // Auto-named and immutable, as the auth Secret below: the provider updates ConfigMaps and Secrets in place
    // (the stack's Kubernetes provider), except an immutable one, which a change replaces under a new name;
    // the Deployment names it, so the pods roll. That is how a new ini or password reaches PgBouncer today.
    const config = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      {
        metadata: meta,
        immutable: true,
        data: Object.fromEntries(layout.map((p, i) => [p.iniFile, this.inis[i]])),
      },
      { parent: this },
    );

    const tlsArgs = { namespace: args.namespace, labels };
    this.certificate = clientCertificate(
      name,
      { ...tlsArgs, tls: args.tls, service: SERVICE_NAME, secretInputs: args.secretInputs },
      this,
    );
    const server = serverCa(name, args.tls.serverCa, tlsArgs, this, args.serverCaPem);
    this.serverCa = server;

    const secret = new k8s.core.v1.Secret(
      `${name}-auth`,
      {
        metadata: meta,
        type: "Opaque",
        // Replaced, never updated in place, on a change (see the ConfigMap above): the pods roll onto it.
        immutable: true,
        stringData: {
          [SECRET_KEYS.authFile]: pulumi.secret(args.credentials.authFile),
          ...Object.fromEntries(
            layout.map((p) => [
              p.connectionKey,
              pulumi.secret(
                pulumi
                  .output(args.credentials.exporterConnectionString)
                  .apply((url) => socketConnectionString(url, socketDir(p.index))),
              ),
            ]),
          ),
        },
      },
      { parent: this },
    );

    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: { ...meta, name: DEPLOYMENT_NAME },
        spec: {
          replicas: args.workload.replicas,
          revisionHistoryLimit: 5,
          selector: { matchLabels: selectorLabels(name) },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: ROLLING_SURGE } },
          template: {
            // No empty map: the API server drops it, and the offline render must show what a real apply keeps.
            metadata: {
              labels,
              ...(Object.keys(args.podAnnotations ?? {}).length > 0
                ? { annotations: { ...args.podAnnotations } }
                : {}),
            },
            spec: podSpec(args, {
              configMap: config.metadata.name,
              secret: secret.metadata.name,
              instance: name,
              ...(this.certificate ? { tlsSecret: this.certificate.secretName } : {}),
              ...(server ? { serverCa: server.mount } : {}),
            }),
          },
        },
      },
      { parent: this },
    );

    const service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { ...meta, name: SERVICE_NAME },
        spec: {
          type: "ClusterIP",
          selector: selectorLabels(name),
          ports: [
            {
              name: PORT_NAMES.client,
              port: args.workload.port,
              targetPort: PORT_NAMES.client,
              protocol: "TCP",
            },
            {
              name: PORT_NAMES.metrics,
              port: args.exporter.port,
              targetPort: PORT_NAMES.metrics,
              protocol: "TCP",
            },
          ],
        },
      },
      { parent: this },
    );

    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      { metadata: meta, spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(name) } } },
      { parent: this },
    );

    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol`,
      {
        metadata: meta,
        spec: networkPolicySpec(name, args, args.namespace),
      },
      { parent: this },
    );

    this.serviceName = service.metadata.name;
    // The cluster-domain name: the certificate's common name, and the last of its SANs.
    this.host = service.metadata.name.apply((n) => serviceNames(n, args.namespace).slice(-1)[0]);
    this.port = pulumi.output(args.workload.port);
    this.metricsPort = pulumi.output(args.exporter.port);
    this.registerOutputs({
      host: this.host,
      port: this.port,
      metricsPort: this.metricsPort,
      serviceName: this.serviceName,
    });
  }
}
