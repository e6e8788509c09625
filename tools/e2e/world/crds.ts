/** The prometheus-operator CRDs (PodMonitor, PrometheusRule), installed and waited on until Established. */
import type { Kubectl } from "../clients/kubectl";

export async function installCrds(kubectl: Kubectl, crds: readonly string[]): Promise<void> {
  await kubectl(["apply", "--server-side", "--field-manager=clipper-e2e", ...crds.flatMap((f) => ["-f", f])]);
  await kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/podmonitors.monitoring.coreos.com",
    "crd/prometheusrules.monitoring.coreos.com",
  ]);
}
