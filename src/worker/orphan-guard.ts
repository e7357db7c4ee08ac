/**
 * A worker never outlives its master.
 *
 * While its IPC channel is open, node:cluster already exits a worker whose
 * master disappears. Once a drain has led the worker out of the cluster, the
 * channel is closed on purpose, and a worker whose app winds down on its own
 * (a `liveswap:drain` listener, a timer it keeps) would be stopped only by
 * the master's SIGKILL at the drain timeout. If the master is SIGKILLed
 * meanwhile, nobody would ever stop it. So every worker checks, twice a
 * second, that its parent is still the master that forked it, and exits if
 * not. The timer is unref'd: it never keeps a worker alive by itself.
 *
 * (A worker whose event loop is blocked cannot run this check either; only
 * an external supervisor can stop such a process.)
 */
const CHECK_INTERVAL_MS = 500;

export function exitWhenMasterGone(): void {
  const masterPid = process.ppid;
  const timer = setInterval(() => {
    if (masterAlive(masterPid)) return;
    process.stderr.write(`liveswap worker: the master (pid ${masterPid}) is gone; exiting\n`);
    process.exit(1);
  }, CHECK_INTERVAL_MS);
  timer.unref();
}

function masterAlive(masterPid: number): boolean {
  // process.ppid asks the OS each time (getppid): on POSIX an orphan is
  // adopted by init or a subreaper at once, so a new parent means the master
  // is gone. Windows does not re-parent; there, ask whether the pid lives.
  if (process.platform !== 'win32') return process.ppid === masterPid;
  try {
    process.kill(masterPid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
