/** What the benchmark reads about processes, from /proc (Linux). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { childPids, cpuSeconds } from '../../test/helpers/proc-tree.js';

/** Resident set size in MiB. */
export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
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

/** CPU time (user + system) of `pid` and its children so far, in ms. */
export function cpuMsOfTree(pid: number): number {
  return [pid, ...childPids(pid)].reduce((sum, p) => sum + cpuSeconds(p), 0) * 1000;
}

/**
 * Pins a process (every thread of it) to one CPU with taskset; false where
 * that cannot be done (no taskset, one CPU).
 */
export function pinToCpu(pid: number, cpu: number): boolean {
  if (os.availableParallelism() < 2) return false;
  try {
    execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU time (user + system) of this process's children that have exited and
 * been waited for, in ms (/proc/self/stat cutime + cstime; 10 ms steps on
 * Linux's usual 100 ticks a second). Read before and after a child's run, it
 * is that child's CPU time, if no other child exited meanwhile.
 */
export function exitedChildrenCpuMs(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  // Fields 16 and 17, counted from the pid; the command name (field 2, in parentheses) may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [cutime, cstime] = [Number(fields[16 - 3]), Number(fields[17 - 3])];
  // Clock ticks: USER_HZ, 100 on every Linux architecture Node runs on.
  return (cutime + cstime) * 10;
}
