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
import { readKubeconfig } from "../../../components/providers";
import { loadStackSettings } from "../../../stacks/settings";
import { listStacks } from "../../../stacks/stack-file";
import type { KeptWorld, Log, StackShell, World } from "../context";
import type { Toolchain } from "../toolchain/toolchain";
import { startControlPlane } from "./control-plane";
import { installCrds } from "./crds";
import { startKwok } from "./kwok";
import { startOpenBao } from "./openbao";
import { chownToRunUser, openServerGroup } from "./processes";

/** The host each stack (in listStacks' order) reaches the local OpenBao by: two names of one server. */
const VAULT_HOSTS = ["127.0.0.1", "localhost"];

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
    // Each stack's pinned context, and a kubeconfig per stack with it current (a shell set up for it).
    const pinned = new Map(listStacks().map((st) => [st, loadStackSettings(st).providers.kubernetesContext]));
    const stackKubeconfigs = new Map(
      [...pinned.keys()].map((st) => [st, useKube ? kubeconfig : path.join(dir, `${st}.kubeconfig`)]),
    );
    if (useKube) opts.log(`world: using the cluster of KUBECONFIG=${kubeconfig}`);
    else {
      await startControlPlane(
        group,
        kubeconfig,
        [...pinned.values()],
        new Map([...pinned].map(([st, context]) => [context, stackKubeconfigs.get(st) ?? ""])),
      );
    }
    // On a cluster from KUBECONFIG, every stack is pinned to its current context.
    const kubeCurrent = useKube
      ? readKubeconfig(env, (f) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined)).currentContext
      : undefined;
    if (useKube && kubeCurrent === undefined)
      throw new Error(`world: KUBECONFIG=${kubeconfig} has no current context`);
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

    const worldEnv = {
      PATH: opts.tools.path,
      KUBECONFIG: kubeconfig,
      VAULT_ADDR: vault.addr,
      VAULT_TOKEN: vault.token,
    };
    const stacks = listStacks();
    const shell = (stack: string): StackShell => {
      const i = stacks.indexOf(stack);
      if (i < 0 || i >= VAULT_HOSTS.length) throw new Error(`world: no shell for the stack ${stack}`);
      // The local OpenBao under a name of its own per stack; a Vault from VAULT_ADDR as it is.
      const vaultAddr = useVault ? vault.addr : vault.addr.replace("127.0.0.1", VAULT_HOSTS[i]);
      const context = kubeCurrent ?? pinned.get(stack) ?? "";
      return {
        env: { ...worldEnv, KUBECONFIG: stackKubeconfigs.get(stack) ?? kubeconfig, VAULT_ADDR: vaultAddr },
        overrides: {
          "providers.vaultAddress": vaultAddr,
          ...(useKube ? { "providers.kubernetesContext": context } : {}),
        },
        context,
        vaultAddr,
      };
    };
    return {
      dir,
      kubeconfig,
      vaultAddr: vault.addr,
      vaultToken: vault.token,
      env: worldEnv,
      shell,
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
