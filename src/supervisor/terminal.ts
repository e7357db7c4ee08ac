/**
 * The foreground master's terminal: whether it has one, and how to let go of
 * a terminal that has hung up.
 */
import fs from 'node:fs';
import tty from 'node:tty';

/**
 * Does this process have a controlling terminal right now? Opening /dev/tty
 * answers: ENXIO when there is none (a systemd service, a `setsid` child),
 * and once the terminal has hung up, because the kernel then detaches every
 * process of the session from it.
 */
export function hasControllingTerminal(): boolean {
  try {
    fs.closeSync(fs.openSync('/dev/tty', fs.constants.O_RDONLY | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK));
    return true;
  } catch {
    return false;
  }
}

/** Which of stdin, stdout and stderr are terminals (asked at start: a terminal that hung up no longer says it is one). */
export function terminalStdio(): number[] {
  return [0, 1, 2].filter((fd) => tty.isatty(fd));
}

/**
 * Points these stdio descriptors at /dev/null. Output to a terminal that hung
 * up is lost anyway; and on Node 20, exit restores the terminal settings of
 * every stdio descriptor that was a terminal at start and aborts (SIGABRT,
 * a core dump instead of exit code 0) when the terminal answers EIO, unless
 * the descriptor now names another file. Close and open reuse the lowest
 * free descriptor, which is the one just closed.
 */
export function detachStdio(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
      const reopened = fs.openSync('/dev/null', fd === 0 ? 'r' : 'w');
      // Another thread took the descriptor in between: leave it to its owner.
      if (reopened !== fd) fs.closeSync(reopened);
    } catch {
      // Nothing better to do for a stdio descriptor we cannot replace.
    }
  }
}
