/**
 * Vault's HTTP API (OpenBao speaks it unchanged): KV v2 writes and deletes, as the secret's owners do them;
 * the PKI engine's mount, root and role, as the platform team sets them up.
 */

export interface VaultClient {
  readonly addr: string;
  readonly token: string;
}

/** One request; the status and the raw body, whatever the status. */
async function request(
  v: VaultClient,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const r = await fetch(`${v.addr}/v1/${route}`, {
    method,
    headers: { "X-Vault-Token": v.token, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, text: await r.text() };
}

async function call(v: VaultClient, method: string, route: string, body?: unknown): Promise<unknown> {
  const r = await request(v, method, route, body);
  if (r.status < 200 || r.status > 299)
    throw new Error(`Vault ${method} /v1/${route}: HTTP ${r.status} ${r.text}`);
  return r.text ? (JSON.parse(r.text) as unknown) : undefined;
}

async function mounts(v: VaultClient): Promise<Record<string, unknown>> {
  const m = (await call(v, "GET", "sys/mounts")) as Record<string, unknown>;
  return { ...m, ...((m.data ?? {}) as Record<string, unknown>) };
}

/** Mounts a KV v2 engine at `mount` unless one is there (the dev server has `secret/`). */
export async function ensureKv2(v: VaultClient, mount: string): Promise<void> {
  if (`${mount}/` in (await mounts(v))) return;
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

/**
 * A PKI engine at `mount` with an internal root CA (`pki/root/generate/internal`), unless one is there;
 * returns the root's PEM either way.
 */
export async function ensurePkiRoot(
  v: VaultClient,
  mount: string,
  commonName: string,
  ttl: string,
): Promise<string> {
  if (!(`${mount}/` in (await mounts(v)))) {
    await call(v, "POST", `sys/mounts/${mount}`, { type: "pki", config: { max_lease_ttl: ttl } });
  }
  const ca = await request(v, "GET", `${mount}/cert/ca`);
  const existing = ca.status === 200 ? (JSON.parse(ca.text) as { data?: { certificate?: string } }) : {};
  if (existing.data?.certificate) return existing.data.certificate;
  const root = (await call(v, "POST", `${mount}/root/generate/internal`, {
    common_name: commonName,
    ttl,
  })) as { data: { certificate: string } };
  return root.data.certificate;
}

/** `vault write <mount>/roles/<role> ...`: creates or replaces the role. */
export async function writePkiRole(
  v: VaultClient,
  mount: string,
  role: string,
  body: Record<string, unknown>,
): Promise<void> {
  await call(v, "POST", `${mount}/roles/${role}`, body);
}

/** `vault write <mount>/issue/<role> common_name=...`: the HTTP status and body (a refusal is no throw). */
export async function pkiIssue(
  v: VaultClient,
  mount: string,
  role: string,
  commonName: string,
  altNames: readonly string[] = [],
): Promise<{ status: number; text: string }> {
  return request(v, "POST", `${mount}/issue/${role}`, {
    common_name: commonName,
    ...(altNames.length > 0 ? { alt_names: altNames.join(",") } : {}),
    ttl: "1h",
  });
}

/** The PEM of the CA a PKI mount issues with (`GET <mount>/cert/ca`). */
export async function pkiCaPem(v: VaultClient, mount: string): Promise<string> {
  const r = (await call(v, "GET", `${mount}/cert/ca`)) as { data: { certificate: string } };
  return r.data.certificate;
}
