/**
 * The local world the e2e runs in: etcd, kube-apiserver (Pod Security admission on), kube-controller-manager,
 * kube-scheduler, kwok with three fake nodes, and an OpenBao dev server, all on free ports of 127.0.0.1 and
 * run as an unprivileged user when started as root. Every PID is tracked: `stop()` ends them in reverse
 * order, and a crash or Ctrl-C kills them from the exit hook. An existing cluster (`KUBECONFIG`) or Vault
 * (`VAULT_ADDR` + `VAULT_TOKEN`) is used instead of the local one when the environment names it.
 *
 * Other scenarios reuse it: `startWorld()` gives the kubeconfig, the Vault address and token, a `kubectl`
 * helper, `stop()` and `keep()`; `stopKept()` stops what `keep()` left.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { secondsSince } from "../../common";
import { signal, sleep } from "../../harness/proc";
import { kubectlOk, kubectlRaw } from "../clients/kubectl";
import type { VaultClient } from "../clients/vault";
import type { KeptWorld, Log, World } from "../context";
import type { Toolchain } from "../toolchain/toolchain";
import { startControlPlane } from "./control-plane";
import { installCrds } from "./crds";
import { startKwok } from "./kwok";
import { startOpenBao } from "./openbao";
import { chownToRunUser, openServerGroup } from "./processes";

export interface WorldOptions {
  readonly tools: Toolchain;
  readonly log: Log;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts (or attaches to) the cluster and Vault; on any failure stops what it started and rethrows. */
export async function startWorld(opts: WorldOptions): Promise<World> {
  const env = opts.env ?? process.env;
  const group = openServerGroup(opts.tools, opts.log);
  const dir = group.dir;
  const started = Date.now();
  try {
    const useKube = env.KUBECONFIG !== undefined && env.KUBECONFIG !== "";
    const useVault = Boolean(env.VAULT_ADDR && env.VAULT_TOKEN);
    const kubeconfig = useKube ? String(env.KUBECONFIG) : path.join(dir, "admin.kubeconfig");
    if (useKube) opts.log(`world: using the cluster of KUBECONFIG=${kubeconfig}`);
    else await startControlPlane(group, kubeconfig);
    const raw = kubectlRaw(opts.tools.bin("kubectl"), kubeconfig, { PATH: opts.tools.path });
    const kubectl = kubectlOk(raw);
    if (!useKube) await startKwok(group, { kubeconfig, kubectl, raw, stages: opts.tools.kwokStages });
    await installCrds(kubectl, opts.tools.crds);

    let vault: VaultClient;
    if (useVault) {
      vault = { addr: String(env.VAULT_ADDR), token: String(env.VAULT_TOKEN) };
      opts.log(`world: using the Vault of VAULT_ADDR=${vault.addr}`);
    } else {
      vault = await startOpenBao(group);
    }
    opts.log(`world: ready in ${secondsSince(started)}`);
    const logs = path.join(dir, "logs");
    if (fs.existsSync(logs)) await chownToRunUser(logs);

    return {
      dir,
      kubeconfig,
      vaultAddr: vault.addr,
      vaultToken: vault.token,
      env: {
        PATH: opts.tools.path,
        KUBECONFIG: kubeconfig,
        VAULT_ADDR: vault.addr,
        VAULT_TOKEN: vault.token,
      },
      kubectl,
      kubectlRaw: raw,
      local: { kube: !useKube, vault: !useVault },
      stop: () => group.stop(),
      keep(stateFile: string): KeptWorld {
        const kept: KeptWorld = {
          dir,
          kubeconfig,
          vaultAddr: vault.addr,
          vaultToken: vault.token,
          processes: group.release().map((p) => ({ name: p.name, pid: p.pid, exe: p.exe })),
        };
        fs.writeFileSync(stateFile, JSON.stringify(kept, null, 2), { mode: 0o600 });
        return kept;
      },
    };
  } catch (e) {
    await group.stop();
    throw e;
  }
}

/** `--down`: stops what `--keep` left (only PIDs that still run the binary it started) and removes its dir. */
export async function stopKept(stateFile: string, log: Log): Promise<boolean> {
  if (!fs.existsSync(stateFile)) return false;
  const kept = JSON.parse(fs.readFileSync(stateFile, "utf8")) as KeptWorld;
  for (const p of [...kept.processes].reverse()) {
    let exe = "";
    try {
      exe = fs.readlinkSync(`/proc/${p.pid}/exe`);
    } catch {
      continue; // gone
    }
    if (path.basename(exe) !== path.basename(p.exe)) continue; // the PID now belongs to someone else
    signal(p.pid, "SIGTERM");
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${p.pid}`); i++) await sleep(100);
    if (fs.existsSync(`/proc/${p.pid}`)) signal(p.pid, "SIGKILL");
    log(`world: stopped ${p.name} (pid ${p.pid})`);
  }
  fs.rmSync(kept.dir, { recursive: true, force: true });
  fs.rmSync(stateFile, { force: true });
  return true;
}
