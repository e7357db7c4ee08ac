import type { WorkerHandle } from './worker-handle.js';

/**
 * Waits for a group of workers started together: resolves undefined once all
 * are ready, or the first worker that exited before becoming ready — without
 * waiting for the others' timeouts.
 */
export function allReadyOrFirstFailure(workers: readonly WorkerHandle[]): Promise<WorkerHandle | undefined> {
  return new Promise((resolve) => {
    let pending = workers.length;
    if (pending === 0) return resolve(undefined);
    for (const worker of workers) {
      void worker.readyOrExited.then((ready) => {
        if (!ready) resolve(worker);
        else if (--pending === 0) resolve(undefined);
      });
    }
  });
}
