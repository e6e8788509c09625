/** OpenBao's dev server on a free port of 127.0.0.1 (in memory, unsealed, a random root token). */
import * as crypto from "node:crypto";
import { freePort } from "../../harness/proc";
import { waitFor } from "../clients/kubectl";
import type { VaultClient } from "../clients/vault";
import type { Servers } from "./processes";

/** Starts the server and waits until it reports healthy; returns its address and root token. */
export async function startOpenBao(c: Servers): Promise<VaultClient> {
  const port = await freePort();
  const token = `e2e-${crypto.randomBytes(12).toString("hex")}`;
  const addr = `http://127.0.0.1:${port}`;
  const bao = c.start("openbao", c.serverBin("bao"), [
    "server",
    "-dev",
    `-dev-root-token-id=${token}`,
    `-dev-listen-address=127.0.0.1:${port}`,
  ]);
  await waitFor("OpenBao to unseal", async () => {
    await c.alive(bao)();
    const r = await fetch(`${addr}/v1/sys/health`);
    return r.status === 200 ? true : undefined;
  });
  return { addr, token };
}
