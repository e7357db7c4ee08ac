/**
 * Process-tree and output helpers for the hook, watch, operation-lock and node-line tests.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * The fields of /proc/PID/stat after the command name, or undefined once the
 * process is gone. fields[0] is field 3 of stat(5) (the state), fields[1] the
 * ppid, fields[11] and fields[12] utime and stime.
 */
export function statFields(pid: number | string): string[] | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Direct children of `pid` right now (Linux /proc; an empty list where /proc is missing). */
export function childPids(pid: number): number[] {
  // The kernel's own list, where it keeps one (CONFIG_PROC_CHILDREN): one read
  // instead of a scan of every process, cheap enough to sample every few ms.
  try {
    const listed = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return listed ? listed.split(/\s+/).map(Number).sort((a, b) => a - b) : [];
  } catch {
    // Not there: scan.
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  return entries
    .filter((entry) => /^\d+$/.test(entry) && Number(statFields(entry)?.[1]) === pid)
    .map(Number)
    .sort((a, b) => a - b);
}

let clockTicks: number | undefined;

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / clockTicks : 0;
}

/** The command line of a process ('' once it is gone). */
export function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** The executable a process runs, symlinks resolved ('' once it is gone). */
export function executable(pid: number): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

/** Children of the master running the pre-upgrade hook runner (not workers, not spares). */
export function hookRunnerPids(masterPid: number): number[] {
  return childPids(masterPid).filter((pid) => commandLine(pid).includes('hook-runner.js'));
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}
