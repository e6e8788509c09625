/**
 * The settings PgBouncer does not apply on a reload, and the pod template's hash of them. PgBouncer 1.25.2 marks
 * them `CF_NO_RELOAD` in `bouncer_params` (src/main.c; on Linux): a reload keeps the value it started with and
 * says nothing (lib/usual/cfparser.c, `cf_set`), so only a restart applies a change. Everything else in the
 * shared ini reaches running pods by reload (./pgbouncer-pod.sh). `SHOW CONFIG`'s `changeable` column says
 * `no` for exactly these (tools/test/integration/release-behaviour.test.ts compares them on the real release).
 */
import * as crypto from "crypto";
import { iniParameters } from "./ini-reader";

/** `CF_NO_RELOAD` parameters of PgBouncer 1.25.2 (`service_name`, an alias of `job_name`, aside). */
export const NO_RELOAD_PARAMETERS = [
  "disable_pqexec",
  "job_name",
  "listen_addr",
  "listen_backlog",
  "listen_port",
  "pidfile",
  "pkt_buf",
  "resolv_conf",
  "so_reuseport",
  "track_extra_parameters",
  "unix_socket_dir",
  "unix_socket_group",
  "unix_socket_mode",
  "user",
] as const;

/** The pod template annotation that carries {@link noReloadHash}: a change of it rolls the pods. */
export const NO_RELOAD_ANNOTATION = "clipper.io/pgbouncer-no-reload-settings";

/**
 * The `[pgbouncer]` settings of `ini` that a reload cannot apply, as `key = value` lines in table order; a
 * setting the ini leaves out (PgBouncer's default) is `key =` with nothing after it.
 */
export function noReloadSettings(ini: string): string[] {
  const set = iniParameters(ini, "pgbouncer");
  return NO_RELOAD_PARAMETERS.map((k) => (set.has(k) ? `${k} = ${set.get(k)}` : `${k} =`));
}

/** A short hash of {@link noReloadSettings}: the pod template changes, and the pods roll, exactly when they do. */
export function noReloadHash(ini: string): string {
  return crypto.createHash("sha256").update(noReloadSettings(ini).join("\n")).digest("hex").slice(0, 16);
}
