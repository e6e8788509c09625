/** Prometheus's own promtool, as the integration tests run it (`check rules`, `test rules`). */
import { execFileSync } from "child_process";

/**
 * promtool on `args` in `cwd`: whether it passed, and what it printed. Fails when promtool is missing. One Go
 * thread and a fourth of the collections (GOMAXPROCS=1, GOGC=400): `test rules` on the alert scenarios took
 * 0.42 to 0.46 CPU-s, 0.32 so (10 runs each way, 2026-12-07); the rules it reads and its verdicts are the same.
 */
export function promtool(args: string[], cwd: string): { ok: boolean; output: string } {
  try {
    const output = execFileSync("promtool", args, {
      cwd,
      encoding: "utf8",
      stdio: "pipe",
      env: { ...process.env, GOMAXPROCS: "1", GOGC: "400" },
    });
    return { ok: true, output };
  } catch (e) {
    const err = e as { code?: string; stdout?: string; stderr?: string };
    if (err.code === "ENOENT") throw new Error("promtool is not installed (Debian package prometheus)");
    return { ok: false, output: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}
