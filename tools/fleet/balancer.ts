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
  parentPort.postMessage({ connection: e.ordinal });
  const up = net.connect({ host: "127.0.0.1", port: e.port });
  client.setNoDelay(true);
  up.setNoDelay(true);
  sockets.add(client);
  sockets.add(up);
  const close = () => {
    client.destroy();
    up.destroy();
    sockets.delete(client);
    sockets.delete(up);
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
  readonly refused?: boolean;
  readonly error?: string;
}

/** Starts the balancer on 127.0.0.1 and a free port; `onConnection` hears of each connection's endpoint. */
export async function startBalancer(onConnection: (ordinal: number) => void): Promise<Balancer> {
  const worker = new Worker(WORKER, { eval: true });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  let refused = 0;
  let failed: Error | undefined;
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
      if (m.connection !== undefined) onConnection(m.connection);
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
