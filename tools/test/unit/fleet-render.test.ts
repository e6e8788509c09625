/**
 * The local fleet runs what the program renders (tools/fleet/render.ts): the ConfigMap's ini and the pod
 * template's script environment, with only addresses, ports and folders made local, each rewrite checked.
 */
import * as assert from "node:assert/strict";
import {
  CURRENT_DIR,
  POD_NAME_ENV,
  POD_PATHS,
  canaryDnsName,
  iniParameters,
  podDnsName,
  podIniInput,
  renderIni,
} from "../../../components/pgbouncer";
import { podSpec } from "../../../components/pgbouncer/resources";
import {
  AUTH_FILE,
  CANARY_NAME,
  FLEET_NAMESPACE,
  type FleetPlaces,
  INI_FILE,
  type RenderInput,
  VOLUMES,
  fleetRenderSettings,
  localIniInput,
  specsFromRender,
} from "../../fleet/render";
import { TEST_PORTS, testPlaces, testRenderInput } from "../support/fleet-input";

const PORTS = TEST_PORTS;
const places: FleetPlaces = testPlaces("fleet-x");

function input(replicas: number, processes: number, extra: Partial<RenderInput> = {}): RenderInput {
  return testRenderInput(
    replicas,
    processes,
    { checkSeconds: 1, canaryHoldSeconds: 4, failureSeconds: 5, drainSeconds: 6 },
    extra,
  );
}

describe("GIVEN the local fleet's specs from the program's render (3 replicas x 2 processes)", () => {
  const i = input(3, 2);
  const specs = specsFromRender(i, places, [0, 1, 2]);
  const rendered = renderIni(podIniInput(fleetRenderSettings(i), i.iniAuth, FLEET_NAMESPACE));

  it("THEN each replica's ini is the ConfigMap's, but for the listen address and port, the database address, the peers' addresses and the generation's folder", () => {
    const local = specs[1].mounts[VOLUMES.config][INI_FILE];
    let expected = rendered
      .replace("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1")
      .replace(`listen_port = ${i.settings.workload.port}`, `listen_port = ${PORTS[1]}`)
      .replace(
        `host=${i.settings.database.host} port=${i.settings.database.port}`,
        "host=127.0.0.1 port=45432",
      )
      .replaceAll(CURRENT_DIR, places.current);
    for (let o = 0; o < 3; o++) {
      expected = expected.replaceAll(
        `host=${podDnsName(o, FLEET_NAMESPACE)} port=${i.settings.workload.port}`,
        `host=127.0.0.1 port=${PORTS[o]}`,
      );
    }
    assert.notEqual(expected, rendered);
    assert.equal(local, expected);
    const peers = iniParameters(local, "peers");
    assert.deepEqual([...peers.keys()], ["1", "2", "3", "4", "5", "6"]);
    assert.equal(peers.get("5"), `host=127.0.0.1 port=${PORTS[2]}`);
  });

  it("THEN each container's environment is the pod template's, with the pod's name filled in and only its place made local", () => {
    const template = podSpec(fleetRenderSettings(i), {
      configMap: "c",
      authSecret: "a",
      exporterSecret: "e",
      instance: "pgbouncer",
      canary: canaryDnsName(FLEET_NAMESPACE),
      checkLogins: 2,
      tlsSecret: "t",
      serverCa: { kind: "secret", name: "s", key: "ca.crt" },
    });
    const containers = template.containers as { env?: { name: string; value?: string }[] }[];
    const second = containers.find((c) =>
      c.env?.some((e) => e.name === "PGBOUNCER_PROCESS" && e.value === "2"),
    );
    assert.ok(second);
    const env = specs[2].processes[1].env;
    const local = new Set([
      "PGBOUNCER_LISTEN_ADDR",
      "PGBOUNCER_PORT",
      "PGBOUNCER_CURRENT",
      "PGBOUNCER_SOCKET_DIR",
      "PGBOUNCER_SOURCES",
    ]);
    for (const e of second.env ?? []) {
      if (e.name === POD_NAME_ENV) assert.equal(env[e.name], "pgbouncer-2");
      else if (!local.has(e.name)) assert.equal(env[e.name], e.value, e.name);
    }
    assert.equal(env.PGBOUNCER_PORT, String(PORTS[2]));
    assert.equal(env.PGBOUNCER_SOCKET_DIR, places.socketDir(2, 2));
    assert.equal(env.PGBOUNCER_CANARY, CANARY_NAME);
    assert.equal(env.PGBOUNCER_CANARY_HOLD_SECONDS, "4");
    assert.equal(env.PGBOUNCER_DRAIN_SECONDS, "6");
    assert.equal(
      env.PGBOUNCER_SOURCES,
      [VOLUMES.config, VOLUMES.auth, VOLUMES.tls].map((v) => places.mountDir(2, v)).join(" "),
    );
    assert.ok(env.PGBOUNCER_SOURCES.split(" ").every((d) => !d.startsWith(POD_PATHS.configDir)));
  });

  it("THEN the auth volume carries the auth file the program builds", () => {
    assert.equal(specs[0].mounts[VOLUMES.auth][AUTH_FILE], i.authFile);
  });

  it("AND with peers: pod (the control, as the Deployment rendered) no replica lists another's processes", () => {
    const control = specsFromRender(input(3, 2, { peers: "pod" }), places, [1]);
    const peers = iniParameters(control[0].mounts[VOLUMES.config][INI_FILE], "peers");
    assert.deepEqual([...peers.keys()], ["3", "4"]);
  });

  it("AND with canary: false (a control) every script is told no canary", () => {
    const control = specsFromRender(input(2, 1, { canary: false }), places, [0, 1]);
    assert.deepEqual(
      control.map((s) => s.processes[0].env.PGBOUNCER_CANARY),
      ["", ""],
    );
  });

  it("AND a render the fleet cannot make local is refused, naming what moved", () => {
    const pod = podIniInput(fleetRenderSettings(i), i.iniAuth, FLEET_NAMESPACE);
    assert.throws(
      () => localIniInput({ ...pod, auth: { ...pod.auth, file: "/elsewhere/userlist.txt" } }, i, places, 0),
      /auth_file is \/elsewhere\/userlist.txt, not in \/var\/run\/pgbouncer\/applied\/current/,
    );
    assert.throws(
      () =>
        localIniInput(
          { ...pod, process: { peers: [{ id: 9, host: "pgbouncer-9.elsewhere", port: 6432 }] } },
          i,
          places,
          0,
        ),
      /peer 9 is at pgbouncer-9.elsewhere, no pod of the fleet/,
    );
  });
});
