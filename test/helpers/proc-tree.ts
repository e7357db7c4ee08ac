/**
 * Process-tree and output helpers for the hook, watch and operation-lock tests.
 */
import fs from 'node:fs';

/** Direct children of `pid` right now (Linux /proc; an empty list where /proc is missing). */
export function childPids(pid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === pid) children.push(Number(entry));
  }
  return children.sort((a, b) => a - b);
}


/** The command line of a process ('' once it is gone). */
export function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
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
