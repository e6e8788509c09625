import * as assert from "assert";
import { validateManifest } from "../support/k8s-schema";

describe("the Kubernetes schema check itself", () => {
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "x" },
    spec: {
      selector: { matchLabels: { a: "b" } },
      template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "i" }] } },
    },
  };

  it("accepts a valid Deployment", () => assert.doesNotThrow(() => validateManifest(deployment)));

  it("refuses a wrongly typed field", () => {
    const bad = { ...deployment, spec: { ...deployment.spec, replicas: "2" } };
    assert.throws(() => validateManifest(bad), /\/spec\/replicas must be integer/);
  });

  it("refuses a missing required field, unless the manifest is a patch", () => {
    const patch = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "x" },
      spec: { replicas: 2 },
    };
    assert.throws(() => validateManifest(patch), /must have required property/);
    assert.doesNotThrow(() => validateManifest(patch, true));
    assert.throws(() => validateManifest({ ...patch, spec: { replicas: "2" } }, true), /must be integer/);
  });

  it("knows the spread fields the pooler renders, and their values", () => {
    const spread = (c: Record<string, unknown>) => ({
      ...deployment,
      spec: {
        ...deployment.spec,
        template: {
          ...deployment.spec.template,
          spec: {
            ...deployment.spec.template.spec,
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                labelSelector: { matchLabels: { a: "b" } },
                ...c,
              },
            ],
          },
        },
      },
    });
    const good = {
      whenUnsatisfiable: "ScheduleAnyway",
      nodeTaintsPolicy: "Honor",
      nodeAffinityPolicy: "Honor",
      matchLabelKeys: ["pod-template-hash"],
    };
    assert.doesNotThrow(() => validateManifest(spread(good)));
    const path = "/spec/template/spec/topologySpreadConstraints/0";
    for (const [field, bad] of [
      ["nodeTaintsPolicy", "honor"],
      ["nodeAffinityPolicy", "Always"],
      ["whenUnsatisfiable", "Never"],
    ]) {
      assert.throws(
        () => validateManifest(spread({ ...good, [field]: bad })),
        new RegExp(`${path}/${field} must be equal to one of the allowed values`),
        field,
      );
    }
    assert.throws(
      () => validateManifest(spread({ ...good, matchLabelKeys: "pod-template-hash" })),
      /must be array/,
    );
  });

  it("refuses a kind it has no schema for", () => {
    assert.throws(() => validateManifest({ apiVersion: "v1", kind: "Nonsense" }));
  });
});
