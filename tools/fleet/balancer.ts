/**
 * The fleet's balancer, kube-proxy's part: each new connection goes to an endpoint picked at random among
 * those in service and ready (every readiness file there). It runs in a worker thread of its own, as
 * kube-proxy runs beside the clients rather than inside them: on busy cores, what a test process does on its
 * main thread (another fleet's start, a replica's stop, its own clients' TLS) held up every byte through a
 * balancer on that thread, for up to a second at a time, and the cancel requests with them.
 */
import { Worker } from "node:worker_threads";

/** One replica as the Service sees it. */
export interface Endpoint {
  readonly ordinal: number;
  readonly port: number;
  /** In the Service's endpoints (false from the moment the pod is terminating). */
  readonly inService: boolean;
  /** Ready when every one of these exists. */
  readonly readyFiles: readonly string[];
}

export interface Balancer {
  readonly port: number;
  /** Connections refused for want of a ready endpoint. */
  readonly refused: number;
  /**
   * The replica an open connection from 127.0.0.1:`clientPort` went to (the worker tells it as it hands the
   * connection on, before any byte goes through), or undefined.
   */
  replicaOf(clientPort: number): number | undefined;
  /** The endpoints as they are now; the worker applies them from the next new connection on. */
  setEndpoints(endpoints: readonly Endpoint[]): void;
  /** Stops accepting new connections. */
  close(): void;
  /** Closes every connection and ends the worker. */
  end(): Promise<void>;
}

/** The worker's code (plain JavaScript: the TypeScript loader of the main thread does not reach workers). */
const WORKER = `
const { parentPort } = require("node:worker_threads");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
let endpoints = [];
const sockets = new Set();
const server = net.createServer((client) => {
  const ready = endpoints.filter((e) => e.inService && e.readyFiles.every((f) => fs.existsSync(f)));
  if (ready.length === 0) {
    parentPort.postMessage({ refused: true });
    client.destroy();
    return;
  }
  const e = ready[crypto.randomInt(ready.length)];
  const clientPort = client.remotePort;
  parentPort.postMessage({ connection: e.ordinal, clientPort });
  const up = net.connect({ host: "127.0.0.1", port: e.port });
  client.setNoDelay(true);
  up.setNoDelay(true);
  sockets.add(client);
  sockets.add(up);
  let closed = false;
  const close = () => {
    client.destroy();
    up.destroy();
    sockets.delete(client);
    sockets.delete(up);
    if (!closed) parentPort.postMessage({ closed: clientPort, ordinal: e.ordinal });
    closed = true;
  };
  client.on("error", close).on("close", close);
  up.on("error", close).on("close", close);
  client.pipe(up);
  up.pipe(client);
});
parentPort.on("message", (m) => {
  if (m.endpoints) endpoints = m.endpoints;
  if (m.close || m.end) server.close();
  if (m.end) {
    for (const s of sockets) s.destroy();
    parentPort.close();
  }
});
server.once("error", (e) => parentPort.postMessage({ error: e.message }));
server.listen(0, "127.0.0.1", () => parentPort.postMessage({ port: server.address().port }));
`;

interface FromWorker {
  readonly port?: number;
  readonly connection?: number;
  /** The client's port of a connection (`connection`), or of one that closed (`closed`). */
  readonly clientPort?: number;
  readonly closed?: number;
  readonly ordinal?: number;
  readonly refused?: boolean;
  readonly error?: string;
}

/** Starts the balancer on 127.0.0.1 and a free port; `onConnection` hears of each connection's endpoint. */
export async function startBalancer(onConnection: (ordinal: number) => void): Promise<Balancer> {
  const worker = new Worker(WORKER, { eval: true });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  let refused = 0;
  let failed: Error | undefined;
  const handedTo = new Map<number, number>();
  // an error in the worker ends it (new connections are refused from then on); it must not end this process
  worker.on("error", (e) => (failed = e));
  const port = await new Promise<number>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("exit", (code) =>
      reject(failed ?? new Error(`fleet: the balancer exited ${code} before it listened`)),
    );
    worker.on("message", (m: FromWorker) => {
      if (m.port !== undefined) resolve(m.port);
      if (m.error !== undefined) reject(new Error(`fleet: the balancer: ${m.error}`));
      if (m.connection !== undefined) {
        if (m.clientPort !== undefined) handedTo.set(m.clientPort, m.connection);
        onConnection(m.connection);
      }
      // a later connection from the same port is another entry
      if (m.closed !== undefined && handedTo.get(m.closed) === m.ordinal) handedTo.delete(m.closed);
      if (m.refused) refused++;
    });
  }).catch(async (e: unknown) => {
    await worker.terminate();
    throw e;
  });
  return {
    port,
    get refused() {
      return refused;
    },
    replicaOf: (clientPort) => handedTo.get(clientPort),
    setEndpoints: (endpoints) => worker.postMessage({ endpoints }),
    close: () => worker.postMessage({ close: true }),
    async end() {
      worker.postMessage({ end: true });
      const timer = setTimeout(() => void worker.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
