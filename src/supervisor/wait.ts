/** Small waiting helpers: every wait has a way out. */

/** Thrown into an operation when Die cancels it. */
export class Cancelled extends Error {
  constructor() {
    super('cancelled: the master is shutting down');
    this.name = 'Cancelled';
  }
}

/** Resolves like `promise`, or rejects with Cancelled as soon as `signal` aborts. */
export function cancellable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Cancelled());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
