/**
 * The local fleet from a cluster's live objects (tools/fleet/live.ts): the live ini's text made local line by
 * line, the text-level counterpart of render.ts's `localIniInput` (both must give the same ini), every
 * rewrite checked; and the live pod template's containers run with the live pods' names.
 */
import * as assert from "node:assert/strict";
import {
  CURRENT_DIR,
  POD_NAME_ENV,
  canaryDnsName,
  podDnsName,
  podIniInput,
  podScriptCommand,
  renderIni,
} from "../../../components/pgbouncer";
import { podSpec } from "../../../components/pgbouncer/resources";
import { type IniRewrites, type LiveSource, localIniText, specsFromLive } from "../../fleet/live";
import {
  FLEET_NAMESPACE,
  type FleetPlaces,
  INI_FILE,
  type RenderInput,
  fleetRenderSettings,
  localIniInput,
} from "../../fleet/render";
import { TEST_PG, TEST_PORTS, testPlaces, testRenderInput } from "../support/fleet-input";

const PORTS = TEST_PORTS;
const places: FleetPlaces = testPlaces("fleet-y");
const PG = TEST_PG;

function input(replicas: number, processes: number): RenderInput {
  return testRenderInput(replicas, processes, {
    checkSeconds: 10,
    canaryHoldSeconds: 60,
    failureSeconds: 30,
    drainSeconds: 30,
  });
}

/** The rewrites of replica `ordinal` of a fleet in `namespace`, the pods' DNS names as the render names them. */
function rewrites(i: RenderInput, ordinal: number, namespace = FLEET_NAMESPACE): IniRewrites {
  const s = i.settings;
  return {
    listen: { addr: "127.0.0.1", port: places.port(ordinal) },
    database: { from: { host: s.database.host, port: s.database.port }, to: PG },
    peers: new Map(
      Array.from({ length: i.replicas }, (_, o) => [
        podDnsName(o, namespace),
        { host: "127.0.0.1", port: places.port(o) },
      ]),
    ),
    peerPort: s.workload.port,
    current: { from: CURRENT_DIR, to: places.current },
  };
}

describe("GIVEN a live ini (the ConfigMap's text) made local by localIniText", () => {
  for (const [replicas, processes] of [
    [2, 1],
    [3, 2],
  ] as const) {
    it(`THEN for ${replicas} replicas x ${processes} processes it is exactly what localIniInput renders, replica by replica`, () => {
      const i = input(replicas, processes);
      const pod = podIniInput(fleetRenderSettings(i), i.iniAuth, FLEET_NAMESPACE);
      const live = renderIni(pod);
      for (let o = 0; o < replicas; o++) {
        assert.equal(localIniText(live, rewrites(i, o)), renderIni(localIniInput(pod, i, places, o)));
      }
    });
  }

  it("THEN every other line is left byte for byte", () => {
    const i = input(2, 1);
    const live = renderIni(podIniInput(fleetRenderSettings(i), i.iniAuth, FLEET_NAMESPACE));
    const local = localIniText(live, rewrites(i, 1));
    const changed = live.split("\n").filter((l, n) => local.split("\n")[n] !== l);
    assert.equal(local.split("\n").length, live.split("\n").length);
    for (const l of changed) {
      assert.match(
        l,
        /^(clipper = |[12] = |listen_addr|listen_port|auth_file|client_tls_cert_file|client_tls_key_file|client_tls_ca_file|server_tls_ca_file)/,
      );
    }
  });

  it("AND a line it cannot make local is refused, naming it", () => {
    const i = input(2, 1);
    const live = renderIni(podIniInput(fleetRenderSettings(i), i.iniAuth, FLEET_NAMESPACE));
    const w = rewrites(i, 0);
    assert.throws(
      () => localIniText(live.replace("host=postgres.clipper.svc", "host=elsewhere.clipper.svc"), w),
      /line \d+ \(clipper = host=elsewhere.*the database is not at postgres\.clipper\.svc\.cluster\.local:5432/,
    );
    assert.throws(
      () => localIniText(live, { ...w, peers: new Map([...w.peers].slice(0, 1)) }),
      /peer host pgbouncer-1\.pgbouncer-peers\.fleet\.svc\.cluster\.local is no live pod's DNS name/,
    );
    assert.throws(
      () => localIniText(live.replace(`auth_file = ${CURRENT_DIR}`, "auth_file = /etc/pgbouncer"), w),
      /auth_file is not in \/var\/run\/pgbouncer\/applied\/current/,
    );
    assert.throws(() => localIniText(live.replace(/^listen_port = .*$/m, ""), w), /listen_port 0 times/);
  });
});

describe("GIVEN live objects of 2 pods (the render's pod template and ini, in the namespace clipper)", () => {
  const i = input(2, 1);
  const settings = fleetRenderSettings(i);
  const template = podSpec(settings, {
    configMap: "pgbouncer-config",
    authSecret: "pgbouncer-auth",
    exporterSecret: "pgbouncer-exporter-x",
    instance: "pgbouncer",
    canary: canaryDnsName("clipper"),
    checkLogins: 2,
    tlsSecret: "pgbouncer-tls",
    serverCa: { kind: "configMap", name: "postgres-ca", key: "ca.crt" },
  });
  const source: LiveSource = {
    pods: [0, 1].map((o) => ({ ordinal: o, name: `pgbouncer-${o}`, dnsName: podDnsName(o, "clipper") })),
    ini: renderIni(podIniInput(settings, i.iniAuth, "clipper")),
    configVolume: "config",
    volumeFiles: {
      auth: { "userlist.txt": "AUTH" },
      tls: { "tls.crt": "C", "tls.key": "K", "server-ca.crt": "CA" },
    },
    containers: template.containers as LiveSource["containers"],
    processesPerPod: 1,
    database: { host: settings.database.host, port: settings.database.port },
    podPort: settings.workload.port,
  };
  const specs = specsFromLive(source, places, [0, 1], PG);

  it("THEN each replica runs the template's command with the live pod's name and the live canary's", () => {
    for (const [o, spec] of specs.entries()) {
      assert.equal(spec.podName, `pgbouncer-${o}`);
      const c = spec.processes[0];
      assert.deepEqual(c.command, podScriptCommand());
      assert.equal(c.env[POD_NAME_ENV], `pgbouncer-${o}`);
      assert.equal(c.env.PGBOUNCER_CANARY, canaryDnsName("clipper"));
      assert.equal(c.env.PGBOUNCER_CANARY_HOLD_SECONDS, String(settings.workload.canaryHoldSeconds));
    }
  });

  it("THEN its volumes are the live files, the ini made local for it", () => {
    assert.deepEqual(specs[1].mounts.auth, { "userlist.txt": "AUTH" });
    assert.deepEqual(specs[1].mounts.tls, source.volumeFiles.tls);
    const ini = specs[1].mounts.config[INI_FILE];
    assert.match(ini, new RegExp(`^listen_port = ${PORTS[1]}$`, "m"));
    assert.match(ini, new RegExp(`^1 = host=127\\.0\\.0\\.1 port=${PORTS[0]}$`, "m"));
  });
});
