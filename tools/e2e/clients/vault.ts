/** Vault's HTTP API (OpenBao speaks it unchanged): KV v2 writes and deletes, as the secret's owners do them. */

export interface VaultClient {
  readonly addr: string;
  readonly token: string;
}

async function call(v: VaultClient, method: string, route: string, body?: unknown): Promise<unknown> {
  const r = await fetch(`${v.addr}/v1/${route}`, {
    method,
    headers: { "X-Vault-Token": v.token, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`Vault ${method} /v1/${route}: HTTP ${r.status} ${text}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/** Mounts a KV v2 engine at `mount` unless one is there (the dev server has `secret/`). */
export async function ensureKv2(v: VaultClient, mount: string): Promise<void> {
  const mounts = (await call(v, "GET", "sys/mounts")) as Record<string, unknown>;
  if (`${mount}/` in mounts || `${mount}/` in ((mounts.data ?? {}) as Record<string, unknown>)) return;
  await call(v, "POST", `sys/mounts/${mount}`, { type: "kv", options: { version: "2" } });
}

/** `vault kv put -mount=<mount> <path> k=v...`: a new version of the secret. */
export async function kvPut(
  v: VaultClient,
  mount: string,
  path: string,
  data: Record<string, string>,
): Promise<void> {
  await call(v, "POST", `${mount}/data/${path}`, { data });
}

/** `vault kv delete -mount=<mount> <path>`: soft-deletes the latest version. */
export async function kvDelete(v: VaultClient, mount: string, path: string): Promise<void> {
  await call(v, "DELETE", `${mount}/data/${path}`);
}
