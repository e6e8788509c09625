/**
 * What the e2e run obtains: the tools on PATH as they are, anything missing built by `toolchain.sh` into a
 * cache keyed by versions (a second run builds nothing), plus the operator CRDs and kwok's stage configs.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface Toolchain {
  /** The cache folder of these versions (`bin/`, `crds/`, `kwok-stages/`, `logs/`). */
  readonly cache: string;
  /** PATH for every command of the run: the caller's PATH first, then the cache's `bin/`. */
  readonly path: string;
  /** Absolute path of a tool, PATH first (as `toolchain.sh` decided), then the cache. */
  bin(name: string): string;
  /** The prometheus-operator CRD manifests for PodMonitor and PrometheusRule. */
  readonly crds: readonly string[];
  /** kwok's stage configs: node initialise + lease heartbeat, and the general pod lifecycle but its delete. */
  readonly kwokStages: readonly string[];
}

const SCRIPT = path.join(__dirname, "toolchain.sh");

/** Runs `toolchain.sh` (its progress lines go to our stderr) and returns what it provides. */
export async function obtainToolchain(): Promise<Toolchain> {
  const cache = await new Promise<string>((resolve, reject) => {
    const child = spawn("bash", [SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve(out.trim().split("\n").pop() ?? "")
        : reject(new Error(`toolchain.sh exited ${code}`)),
    );
  });
  return toolchainAt(cache);
}

export function toolchainAt(cache: string): Toolchain {
  const binDir = path.join(cache, "bin");
  const searchPath = [process.env.PATH ?? "", binDir].filter((p) => p !== "").join(path.delimiter);
  const bin = (name: string): string => {
    for (const dir of searchPath.split(path.delimiter)) {
      const file = path.join(dir, name);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
    throw new Error(`e2e: ${name} is neither on PATH nor in ${binDir}; run tools/e2e/toolchain/toolchain.sh`);
  };
  const stages = path.join(cache, "kwok-stages");
  return {
    cache,
    path: searchPath,
    bin,
    crds: ["podmonitors", "prometheusrules"].map((k) =>
      path.join(cache, "crds", `monitoring.coreos.com_${k}.yaml`),
    ),
    kwokStages: [
      "node/fast/node-initialize.yaml",
      "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
      // Not pod-delete: world/kwok.ts has its own (a pod goes when its containers would have exited).
      ...["create", "init-container-running", "init-container-completed", "ready", "complete"].map(
        (s) => `pod/general/pod-${s}.yaml`,
      ),
    ].map((f) => path.join(stages, f)),
  };
}
