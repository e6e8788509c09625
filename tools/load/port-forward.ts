/** `kubectl port-forward` to the pooler's Service, on a free local port picked by kubectl. */
import { spawn } from "node:child_process";

export interface PortForward {
  readonly port: number;
  stop(): void;
}

export function portForward(o: {
  namespace: string;
  service: string;
  remotePort: number;
  context?: string;
}): Promise<PortForward> {
  const args = [
    ...(o.context ? ["--context", o.context] : []),
    "-n",
    o.namespace,
    "port-forward",
    "--address",
    "127.0.0.1",
    `svc/${o.service}`,
    `:${o.remotePort}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("kubectl", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`kubectl ${args.join(" ")} did not forward within 20 s: ${out}`));
    }, 20_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run kubectl: ${e.message}`));
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward exited ${code}: ${out.trim()}`));
    });
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve({ port: Number(m[1]), stop: () => child.kill() });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
  });
}
