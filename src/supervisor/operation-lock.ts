/**
 * One operation at a time. Start, Upgrade and Kill each run alone: one asked
 * for while another runs is refused at once (ABORTED, naming the one in
 * progress), never queued. Die cancels the running one through its signal;
 * every wait inside an operation is cancellable (wait.ts), so it winds down
 * at its next wait and its caller gets UNAVAILABLE.
 */
import { aborted, unavailable } from '../common/errors.js';
import { Cancelled } from './wait.js';

export type OperationName = 'start' | 'upgrade' | 'kill' | 'die' | 'upgrade-master';

interface RunningOperation {
  name: OperationName;
  startedAt: number;
  abort: AbortController;
  done: Promise<unknown>;
}

export class OperationLock {
  private running: RunningOperation | undefined;

  /** The operation running now, if any. */
  get current(): OperationName | undefined {
    return this.running?.name;
  }

  /** Runs `body` alone, or throws ABORTED at once if another operation runs. */
  async run<T>(name: OperationName, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.running) {
      const seconds = ((Date.now() - this.running.startedAt) / 1000).toFixed(1);
      throw aborted(`${this.running.name} in progress (started ${seconds} s ago); try again once it has finished`);
    }
    const abort = new AbortController();
    const done = Promise.resolve().then(() => body(abort.signal));
    this.running = { name, startedAt: Date.now(), abort, done };
    try {
      return await done;
    } catch (error) {
      if (error instanceof Cancelled) throw unavailable(`${name} cancelled: the master is shutting down`);
      throw error;
    } finally {
      this.running = undefined;
    }
  }

  /** Cancels the running operation, if any, and resolves once it has wound down. */
  async cancel(): Promise<void> {
    const running = this.running;
    if (!running) return;
    running.abort.abort();
    await running.done.catch(() => {});
  }
}
