/**
 * A fleet render input for unit tests: prod's settings and credentials (harness passwords), three replica
 * ports, placeholder TLS files and a PostgreSQL address, under folders of `/tmp/<dir>`. Nothing is started.
 */
import { buildCredentials } from "../../../components/credentials";
import { fleetSettings } from "../../fleet/fleet";
import type { FleetPlaces, RenderInput, ScriptTimings } from "../../fleet/render";
import { harnessVaultData } from "../../harness/stack";

/** The replicas' ports. */
export const TEST_PORTS = [41000, 41001, 41002];
/** PostgreSQL's address. */
export const TEST_PG = { host: "127.0.0.1", port: 45432 };

/** Where replica `o`'s mounts and sockets are, under `/tmp/<dir>`. */
export function testPlaces(dir: string): FleetPlaces {
  return {
    current: `/tmp/${dir}/applied/current`,
    mountDir: (o, v) => `/tmp/${dir}/pgbouncer-${o}/mounts/${v}`,
    socketDir: (o, p) => `/tmp/${dir}/pgbouncer-${o}/run/${p}`,
    port: (o) => TEST_PORTS[o],
  };
}

/** Prod's render input for `replicas` x `processes`, with the script's `timings`. */
export function testRenderInput(
  replicas: number,
  processes: number,
  timings: ScriptTimings,
  extra: Partial<RenderInput> = {},
): RenderInput {
  const settings = fleetSettings("prod");
  const credentials = buildCredentials(
    settings.credentials,
    { statsUser: settings.exporter.statsUser, pgbouncerPort: settings.workload.port },
    {
      data: harnessVaultData(settings, {
        user: "clipper_app",
        password: "app-pw",
        statsPassword: "stats-pw",
      }),
    },
  );
  return {
    settings,
    replicas,
    processes,
    authFile: credentials.authFile,
    iniAuth: credentials.iniAuth,
    serverLoginChecks: credentials.serverLoginChecks,
    tls: { cert: "CERT", key: "KEY", serverCa: "CA" },
    postgres: TEST_PG,
    canary: true,
    timings,
    ...extra,
  };
}
