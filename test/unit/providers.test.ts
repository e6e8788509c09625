/**
 * Where a stack deploys: the `providers` settings, the kubeconfig read as kubectl reads it, and the shell
 * checked against the stack's pinned cluster, Vault and Grafana (each refusal names what the stack expects
 * and what the shell has).
 */
import * as assert from "assert";
import * as path from "path";
import { IssueList, readSection } from "../../components/common";
import {
  type Kubeconfig,
  PROVIDERS,
  ProviderTargetError,
  checkTargets,
  kubeconfigFiles,
  mergeKubeconfigs,
  normalAddress,
  readKubeconfig,
  resolveContext,
  targetProblems,
} from "../../components/providers";
import { parseSettings } from "../../stacks/settings";
import { providerConfigIssues } from "../../stacks/program";
import { CONFIG_NAMESPACE, rawStackConfig, stackFileConfig } from "../../stacks/stack-file";
import { offlineKubeconfig } from "../../testing/offline-world";

const KEY = `${CONFIG_NAMESPACE}:providers`;
const key = (field: string) => `${KEY}.${field}`;
const PINNED = {
  kubernetesContext: "clipper-prod",
  vaultAddress: "https://vault.prod.example:8200",
  grafanaUrl: "https://grafana.example",
};

function problemsOf(raw: unknown): string[] {
  const issues = new IssueList();
  readSection(PROVIDERS, KEY, raw, issues);
  return issues.issues.map((i) => `${i.key}: ${i.message}`);
}

/** A kubeconfig of the named contexts (each on its own cluster), `current` its current context. */
function kubeconfig(contexts: string[], current?: string): Kubeconfig {
  return mergeKubeconfigs("KUBECONFIG=/k", [{ file: "/k", text: offlineKubeconfig(contexts, current) }]);
}

describe("providers settings", () => {
  it("GIVEN the three pins THEN they are read as given", () => {
    assert.deepStrictEqual(problemsOf(PINNED), []);
  });

  it("refuses a missing context or Vault address, naming the key", () => {
    assert.deepStrictEqual(problemsOf({}), [
      `${key("kubernetesContext")}: is required (a kubeconfig context name)`,
      `${key("vaultAddress")}: is required (an http(s) URL such as https://vault.example:8200)`,
    ]);
  });

  it("refuses an address that is not an http(s) URL", () => {
    assert.deepStrictEqual(problemsOf({ ...PINNED, vaultAddress: "vault.prod:8200" }), [
      `${key("vaultAddress")}: is "vault.prod:8200"; must be an http(s) URL such as https://vault.example:8200`,
    ]);
  });

  it("needs grafanaUrl exactly when the dashboard is pushed", () => {
    const raw = rawStackConfig(stackFileConfig("prod"));
    const providers = { ...(raw.providers as object), grafanaUrl: undefined };
    assert.throws(
      () => parseSettings({ ...raw, providers }),
      /clipper-pgbouncer:providers\.grafanaUrl: is required when clipper-pgbouncer:monitoring\.dashboard is true/,
    );
    const off = { ...raw, providers, monitoring: { ...(raw.monitoring as object), dashboard: false } };
    assert.strictEqual(parseSettings(off).providers.grafanaUrl, undefined);
  });

  it("each stack pins its own cluster and Vault", () => {
    const [prod, staging] = ["prod", "staging"].map((s) => parseSettings(rawStackConfig(stackFileConfig(s))));
    assert.notStrictEqual(prod.providers.kubernetesContext, staging.providers.kubernetesContext);
    assert.notStrictEqual(prod.providers.vaultAddress, staging.providers.vaultAddress);
  });

  it("refuses the default providers' config keys, saying what replaced each", () => {
    const issues = providerConfigIssues(["vault:address", "kubernetes:context", "grafana:auth", "pulumi:x"]);
    assert.deepStrictEqual(
      issues.issues.map((i) => i.key),
      ["vault:address", "kubernetes:context", "grafana:auth"],
    );
    assert.match(
      issues.issues[0].message,
      /is not read: the program's providers are explicit .*providers\.vaultAddress, with the token in VAULT_TOKEN/,
    );
  });
});

describe("the kubeconfig, read as kubectl reads it", () => {
  it("KUBECONFIG's files in order, empty entries and repeats dropped; else ~/.kube/config", () => {
    assert.deepStrictEqual(
      kubeconfigFiles({ KUBECONFIG: `/a${path.delimiter}${path.delimiter}/b${path.delimiter}/a` }).files,
      ["/a", "/b"],
    );
    assert.deepStrictEqual(kubeconfigFiles({ HOME: "/home/me" }), {
      source: "/home/me/.kube/config",
      files: ["/home/me/.kube/config"],
    });
    assert.deepStrictEqual(kubeconfigFiles({ HOME: "/home/me", KUBECONFIG: "" }).files, [
      "/home/me/.kube/config",
    ]);
  });

  it("skips files that do not exist; the first to set current-context sets it, the first to name a context wins it", () => {
    const files: Record<string, string> = {
      "/one": "current-context: staging\n",
      "/two": offlineKubeconfig(["prod", "staging"], "prod"),
      "/three": offlineKubeconfig(["prod"], "prod").replace(/server: .*/, "server: https://elsewhere:6443"),
    };
    const k = readKubeconfig(
      { KUBECONFIG: ["/missing", "/one", "/two", "/three"].join(path.delimiter) },
      (f) => files[f],
    );
    assert.deepStrictEqual(k.files, ["/one", "/two", "/three"]);
    assert.strictEqual(k.currentContext, "staging");
    const prod = resolveContext(k, "prod");
    assert.ok("cluster" in prod);
    assert.strictEqual(prod.cluster.server, "https://kubernetes.offline.invalid:6443");
  });

  it("resolves a file's relative paths against its folder, and an exec command only when it has a folder", () => {
    const text = `
clusters: [{name: c, cluster: {server: "https://x:6443", certificate-authority: ca.crt}}]
users:
  - name: u
    user: {client-certificate: certs/u.crt, client-key: /abs/u.key, exec: {command: ./bin/token, args: [get]}}
  - name: v
    user: {exec: {command: aws, args: [eks, get-token]}}
contexts: [{name: x, context: {cluster: c, user: u}}, {name: y, context: {cluster: c, user: v}}]
`;
    const k = mergeKubeconfigs("/cfg/kube/config", [{ file: "/cfg/kube/config", text }]);
    const x = resolveContext(k, "x");
    assert.ok("cluster" in x);
    assert.strictEqual(x.cluster.certificateAuthority, "/cfg/kube/ca.crt");
    assert.strictEqual(x.user.clientCertificate, "/cfg/kube/certs/u.crt");
    assert.strictEqual(x.user.clientKey, "/abs/u.key");
    assert.deepStrictEqual(x.user.exec, { command: "/cfg/kube/bin/token", args: ["get"] });
    const y = resolveContext(k, "y");
    assert.ok("user" in y);
    assert.strictEqual(y.user.exec?.command, "aws");
  });

  it("refuses a file that is not a kubeconfig, naming it", () => {
    assert.throws(
      () => mergeKubeconfigs("/k", [{ file: "/k", text: "- a\n- b\n" }]),
      /the kubeconfig \/k is not a map/,
    );
  });
});

describe("the shell against the stack's pins", () => {
  const pinned = { ...PINNED };

  it("GIVEN the pinned context current and no VAULT_ADDR or GRAFANA_URL THEN nothing is wrong", () => {
    assert.deepStrictEqual(targetProblems(pinned, {}, kubeconfig(["clipper-prod"], "clipper-prod"), key), []);
  });

  it("GIVEN the kubeconfig's current context is staging's THEN it names both contexts and the fix", () => {
    const k = kubeconfig(["clipper-prod", "clipper-staging"], "clipper-staging");
    assert.deepStrictEqual(targetProblems(pinned, {}, k, key), [
      `${key("kubernetesContext")}: expects the kubeconfig context "clipper-prod", but the current context of ` +
        `KUBECONFIG=/k is "clipper-staging"; switch with \`kubectl config use-context clipper-prod\` (or point ` +
        `KUBECONFIG at this stack's kubeconfig) and run again`,
    ]);
  });

  it("GIVEN no current context THEN it says so", () => {
    const [p] = targetProblems(pinned, {}, kubeconfig(["clipper-prod"]), key);
    assert.match(p, /but KUBECONFIG=\/k sets no current context; switch with/);
  });

  it("GIVEN a kubeconfig without the pinned context THEN it lists the contexts it has", () => {
    const [p] = targetProblems(pinned, {}, kubeconfig(["a", "b"], "a"), key);
    assert.strictEqual(
      p,
      `${key("kubernetesContext")}: expects the kubeconfig context "clipper-prod", but the kubeconfig ` +
        `(KUBECONFIG=/k) has no context "clipper-prod" (its contexts: a, b)`,
    );
  });

  it("GIVEN VAULT_ADDR names another Vault THEN it names both; another spelling of the same one passes", () => {
    const k = kubeconfig(["clipper-prod"], "clipper-prod");
    assert.deepStrictEqual(
      targetProblems(pinned, { VAULT_ADDR: "https://vault.staging.example:8200" }, k, key),
      [
        `${key("vaultAddress")}: expects the Vault at https://vault.prod.example:8200, but VAULT_ADDR is ` +
          `https://vault.staging.example:8200; unset VAULT_ADDR or set it to https://vault.prod.example:8200 ` +
          `(with a token of that Vault) and run again`,
      ],
    );
    assert.deepStrictEqual(
      targetProblems(pinned, { VAULT_ADDR: "HTTPS://Vault.Prod.Example:8200/" }, k, key),
      [],
    );
    assert.deepStrictEqual(targetProblems(pinned, { VAULT_ADDR: "" }, k, key), []);
  });

  it("GIVEN GRAFANA_URL names another Grafana THEN it names both", () => {
    const k = kubeconfig(["clipper-prod"], "clipper-prod");
    const [p] = targetProblems(pinned, { GRAFANA_URL: "https://grafana.other" }, k, key);
    assert.match(
      p,
      /providers\.grafanaUrl: expects the Grafana at https:\/\/grafana\.example, but GRAFANA_URL is https:\/\/grafana\.other/,
    );
  });

  it("checkTargets throws every problem at once, naming the stack, and returns the pinned cluster otherwise", () => {
    const k = kubeconfig(["clipper-prod", "clipper-staging"], "clipper-staging");
    assert.throws(
      () => checkTargets("prod", pinned, { VAULT_ADDR: "https://vault.staging.example:8200" }, k, key),
      (e: unknown) => {
        assert.ok(e instanceof ProviderTargetError);
        assert.match(
          e.message,
          /^this shell is set up for another environment than the stack prod \(2 problems\)/,
        );
        assert.strictEqual(e.problems.length, 2);
        return true;
      },
    );
    const ok = checkTargets("prod", pinned, {}, kubeconfig(["clipper-prod"], "clipper-prod"), key);
    assert.strictEqual(ok.context, "clipper-prod");
    assert.strictEqual(ok.cluster.server, "https://kubernetes.offline.invalid:6443");
  });

  it("compares addresses as URLs", () => {
    assert.strictEqual(normalAddress("HTTP://127.0.0.1:8200/"), "http://127.0.0.1:8200");
    assert.strictEqual(normalAddress("https://vault.example:443"), "https://vault.example");
    assert.notStrictEqual(normalAddress("http://localhost:8200"), normalAddress("http://127.0.0.1:8200"));
  });
});
