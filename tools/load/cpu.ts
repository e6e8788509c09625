/**
 * CPU time of processes and of the machine, from /proc, so a benchmark can say how busy the pooler was:
 * one PgBouncer process runs on one core, so a process near 100 % of a core is the bottleneck.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

let ticks: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when getconf is missing). */
export function clockTicks(): number {
  if (ticks !== undefined) return ticks;
  try {
    ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    ticks = 100;
  }
  return ticks;
}

/** utime + stime of a process in seconds (0 once it is gone). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may hold spaces: count the fields after its closing parenthesis
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine, summed over its cores (/proc/stat). */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + v[4];
  return { busy: (total - idle) / clockTicks(), total: total / clockTicks() };
}

export interface CpuUse {
  /** Cores the processes kept busy on average (1.0 = one core flat out), summed over them. */
  readonly processCores: number;
  /** The busiest single process, in cores. */
  readonly maxProcessCores: number;
  /** Cores the whole machine kept busy on average. */
  readonly machineBusyCores: number;
}

/** Starts measuring `pids`; `stop()` gives their CPU use since then. */
export function measureCpu(pids: readonly number[]): { stop(): CpuUse } {
  const t0 = process.hrtime.bigint();
  const p0 = pids.map(processCpuSeconds);
  const m0 = machineCpuSeconds();
  return {
    stop() {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const per = pids.map((pid, i) => (processCpuSeconds(pid) - p0[i]) / wall);
      const m1 = machineCpuSeconds();
      return {
        processCores: per.reduce((a, b) => a + b, 0),
        maxProcessCores: Math.max(0, ...per),
        machineBusyCores: (m1.busy - m0.busy) / wall,
      };
    },
  };
}
