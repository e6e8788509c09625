import * as assert from "assert";
import { validateManifest } from "./support/k8s-schema";

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

  it("refuses a kind it has no schema for", () => {
    assert.throws(() => validateManifest({ apiVersion: "v1", kind: "Nonsense" }));
  });
});
