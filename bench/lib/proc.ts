/** What the benchmark reads about processes, from /proc (Linux). */
import fs from 'node:fs';

/** Resident set size in MiB. */
export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Samples the number of child processes of `pid` every few ms until stopped; returns the peak. */
export function peakChildren(pid: number, everyMs = 10): { stop(): number } {
  let peak = childPids(pid).length;
  const timer = setInterval(() => (peak = Math.max(peak, childPids(pid).length)), everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, childPids(pid).length);
    },
  };
}

/** CPU time (user + system) of `pid` and its children so far, in ms (from /proc; 10 ms resolution). */
export function cpuMsOfTree(pid: number): number {
  let ticks = 0;
  for (const p of [pid, ...childPids(pid)]) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}
