/**
 * Which pgbouncer.ini parameters each PgBouncer release accepts. PgBouncer refuses to start on a parameter
 * it does not know (1.18 stops at `max_prepared_statements`), so the renderer checks every parameter it
 * emits against the target version. Parameters absent from this table exist in every supported release.
 */

export type Version = readonly [number, number, number];

/** Oldest release the renderer targets: `auth_type = scram-sha-256` arrived in 1.14. */
export const OLDEST_SUPPORTED = "1.14.0";

/**
 * The oldest release the deployed image may run: 1.25.1 and 1.25.2 fix CVE-2025-12819 and
 * CVE-2026-6664..6667.
 */
export const OLDEST_SECURE = "1.25.2";

/** Parameter → first release that accepts it (from PgBouncer's changelog). */
export const PARAMETER_SINCE: Readonly<Record<string, string>> = {
  so_reuseport: "1.12.0",
  auth_dbname: "1.19.0",
  peer_id: "1.19.0",
  max_prepared_statements: "1.21.0",
  track_extra_parameters: "1.20.0",
  server_drop_on_error: "1.25.0",
};

/** Sections that are not parameters but whole ini sections, with their first release. */
export const SECTION_SINCE: Readonly<Record<string, string>> = {
  peers: "1.19.0",
};

export function parseVersion(text: string): Version {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a PgBouncer version of the form MAJOR.MINOR.PATCH`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function isVersion(text: string): boolean {
  return /^(\d+)\.(\d+)\.(\d+)$/.test(text);
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const va = parseVersion(a);
  const vb = parseVersion(b);
  for (let i = 0; i < 3; i++) if (va[i] !== vb[i]) return va[i] - vb[i];
  return 0;
}

/** Whether `version` accepts `parameter` in its `[pgbouncer]` section. */
export function supportsParameter(version: string, parameter: string): boolean {
  const since = PARAMETER_SINCE[parameter];
  return since === undefined || compareVersions(version, since) >= 0;
}

export function supportsSection(version: string, section: string): boolean {
  const since = SECTION_SINCE[section];
  return since === undefined || compareVersions(version, since) >= 0;
}
