import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { SecretInputs } from "../common";
import type { PoolerCredentials } from "../credentials";
import { type ClientCertificate, clientCertificate, serverCa } from "./certificates";
import { serviceNames } from "./egress";
import { CANARY_SERVICE_NAME, PEERS_SERVICE_NAME, STATEFULSET_NAME, canaryDnsName, podName } from "./fleet";
import { renderIni } from "./ini";
import { AUTH_CONFIG_NAMES, type CaRef, SERVICE_NAME } from "./names";
import { networkPolicySpec } from "./network-policy";
import { NO_RELOAD_ANNOTATION, noReloadHash } from "./no-reload";
import { AUTH_FILE, INI_FILE, podIniInput, socketDir } from "./pod-ini";
import { PORT_NAMES, processLayout, selectorLabels, socketConnectionString } from "./pod-layout";
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
 * PgBouncer in front of PostgreSQL, as a fleet of peers: a StatefulSet (a PgBouncer container, run by its
 * script, and an exporter sidecar per process, `processesPerPod`), the headless Service `pgbouncer-peers`
 * that names every pod for its peers and the headless Service `pgbouncer-canary` that publishes pod 0 while
 * it is ready, the ConfigMap `pgbouncer-config` with the shared ini and the Secret `pgbouncer-auth` with the
 * auth file (both updated in place and reloaded by the pods, ./pgbouncer-pod.sh), the exporters' Secret
 * (replaced on a change, which rolls the pods: they read it at start), the Service `pgbouncer`, a
 * PodDisruptionBudget and a NetworkPolicy, and the TLS objects (./certificates.ts). The pod template changes,
 * and the pods roll one at a time, only for what a reload cannot apply: the image, the ports, the processes,
 * the volumes and the command, and the no-reload settings of the ini (./no-reload.ts, as a hash). The pod
 * (./pod-spec.ts) and the NetworkPolicy's spec (./network-policy.ts) are pure functions.
 */
export class PgBouncer extends pulumi.ComponentResource {
  /** In-cluster DNS name of the Service. */
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly metricsPort: pulumi.Output<number>;
  readonly serviceName: pulumi.Output<string>;
  /** The rendered shared pgbouncer.ini (the ConfigMap's); it contains no secret. */
  readonly ini: string;
  /** Names of the exporters' container ports, one per process (for the scrape config). */
  readonly metricsPortNames: readonly string[];
  /** Labels that select the pooler's pods (for scraping and policies). */
  readonly podSelector: Readonly<Record<string, string>>;
  readonly statefulSet: k8s.apps.v1.StatefulSet;
  /** The client-facing certificate; undefined when `tls.clientSslMode` is `disable`. */
  readonly certificate?: ClientCertificate;
  /** Where the CA PostgreSQL is verified against lives; undefined when the stack names none. */
  readonly serverCa?: { readonly ca: CaRef; readonly caBundle?: pulumi.Output<string> };

  constructor(name: string, args: PgBouncerArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("clipper:pgbouncer:PgBouncer", name, {}, opts);
    const labels = commonLabels(name, args.workload.version);
    const meta = { namespace: args.namespace, labels };

    const layout = processLayout(args.workload, args.exporter);
    this.ini = renderIni(podIniInput(args, args.credentials.iniAuth, args.namespace));
    this.metricsPortNames = layout.map((p) => p.metricsPortName);
    this.podSelector = selectorLabels(name);

    // Stable names, updated in place (the provider's enableConfigMapMutable/enableSecretMutable): the kubelet
    // updates the mounted files, and each pod's script reloads PgBouncer after validating them.
    const config = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: { ...meta, name: AUTH_CONFIG_NAMES.config }, data: { [INI_FILE]: this.ini } },
      { parent: this },
    );
    const auth = new k8s.core.v1.Secret(
      `${name}-auth`,
      {
        metadata: { ...meta, name: AUTH_CONFIG_NAMES.auth },
        type: "Opaque",
        stringData: { [AUTH_FILE]: pulumi.secret(args.credentials.authFile) },
      },
      { parent: this },
    );
    // The exporters read their connection strings from the environment, once: immutable, so that a change
    // replaces the Secret under a new name and the pods roll.
    const exporterSecret = new k8s.core.v1.Secret(
      `${name}-exporter`,
      {
        metadata: meta,
        type: "Opaque",
        immutable: true,
        stringData: Object.fromEntries(
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

    const peers = new k8s.core.v1.Service(
      `${name}-peers`,
      {
        metadata: { ...meta, name: PEERS_SERVICE_NAME },
        spec: {
          clusterIP: "None",
          // A pod that is not ready, or terminating, still owns queries whose cancels its peers forward.
          publishNotReadyAddresses: true,
          selector: selectorLabels(name),
          ports: [{ name: PORT_NAMES.client, port: args.workload.port, targetPort: PORT_NAMES.client }],
        },
      },
      { parent: this },
    );
    new k8s.core.v1.Service(
      `${name}-canary`,
      {
        metadata: { ...meta, name: CANARY_SERVICE_NAME },
        spec: {
          clusterIP: "None",
          // Pod 0 only, and only while it is ready: the other pods resolve this name before they reload.
          selector: { ...selectorLabels(name), "statefulset.kubernetes.io/pod-name": podName(0) },
          ports: [{ name: PORT_NAMES.client, port: args.workload.port, targetPort: PORT_NAMES.client }],
        },
      },
      { parent: this },
    );

    const annotations = { ...args.podAnnotations, [NO_RELOAD_ANNOTATION]: noReloadHash(this.ini) };
    this.statefulSet = new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: { ...meta, name: STATEFULSET_NAME },
        spec: {
          serviceName: peers.metadata.name,
          replicas: args.workload.replicas,
          // Pods start and stop side by side (scaling), but a rolling update still replaces one at a time.
          podManagementPolicy: "Parallel",
          // One pod at a time, highest ordinal first. No `rollingUpdate.maxUnavailable`: Kubernetes 1.35 keeps
          // it behind the MaxUnavailableStatefulSet gate, off by default, and the API server drops it (seen by
          // the e2e); with the gate on it defaults to 1. Either way the roll is the same.
          updateStrategy: { type: "RollingUpdate" },
          revisionHistoryLimit: 5,
          selector: { matchLabels: selectorLabels(name) },
          template: {
            metadata: { labels, annotations },
            spec: podSpec(args, {
              configMap: config.metadata.name,
              authSecret: auth.metadata.name,
              exporterSecret: exporterSecret.metadata.name,
              instance: name,
              canary: canaryDnsName(args.namespace),
              checkLogins: args.credentials.serverLoginChecks,
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
