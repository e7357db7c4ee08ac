/** Waiting with deadlines: a test never sleeps and hopes. */
import fs from 'node:fs';

/** Thrown from a waitFor check to stop waiting at once (other errors are retried until the deadline). */
export class GiveUp extends Error {}

export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 25 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves with the result of `promise`, or rejects if it takes longer than `timeoutMs`. */
export function withDeadline<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    }),
  ]);
}

/** Is the process running? A zombie (exited, not yet reaped by its parent or by init) is not. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (error) {
    // Gone meanwhile; or no /proc (not Linux), where kill(0) is all we know.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync('/proc/self/stat');
  }
}

/**
 * Waits until every pid is gone; throws naming the ones still alive. The
 * deadline is a safety net, not a speed claim (how fast they go is measured
 * by npm run bench:timings): a loaded machine may take seconds.
 */
export async function expectGone(pids: readonly number[], timeoutMs = 15_000): Promise<void> {
  await waitFor(`pids ${pids.join(', ')} to exit`, () => pids.every((pid) => !isAlive(pid)), { timeoutMs }).catch(() => {
    const alive = pids.filter(isAlive);
    throw new Error(`processes still alive: ${alive.join(', ')}`);
  });
}
