/**
 * A Launcher of fake worker processes, for unit tests of the master's state
 * machine: no fork, no IPC, no ports — each FakeProcess does exactly what the
 * test's behaviour script tells it to.
 *
 * The pool attaches its listeners *after* launch() returns, so a behaviour
 * must never emit synchronously: schedule with proc.after(ms, fn) (ms 0 means
 * setImmediate). Anything scheduled with after() is dropped once the process
 * has exited, so a scripted "listen in 100 ms" cannot fire on a dead process.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { LaunchSpec, Launcher, WorkerProcess, WorkerProcessEvents } from '../../src/supervisor/launcher.js';

/** Scripts what one launched process does. `index` is its position in launcher.processes. */
export type Behaviour = (proc: FakeProcess, spec: LaunchSpec, index: number) => void;

export function isDrainMessage(message: unknown): message is { liveswap: 'drain'; timeoutMs: number } {
  return typeof message === 'object' && message !== null && (message as { liveswap?: unknown }).liveswap === 'drain';
}

export class FakeProcess extends EventEmitter<WorkerProcessEvents> implements WorkerProcess {
  readonly pid: number;
  /** performance.now() at launch. */
  readonly launchedAt = performance.now();
  /** Every message sent to this process, in order. */
  readonly sent: unknown[] = [];
  /** Every signal passed to kill(), in order. */
  readonly signals: NodeJS.Signals[] = [];
  exited = false;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  /** performance.now() at exit. */
  exitedAt?: number;
  private readonly timers = new Set<NodeJS.Timeout | NodeJS.Immediate>();
  private readonly messageHandlers: ((message: unknown) => void)[] = [];

  constructor(
    readonly id: number,
    readonly spec: LaunchSpec,
  ) {
    super();
    this.pid = 100_000 + id;
    // Registered before the pool's listener, so it sees the state first — also
    // when a behaviour emits 'exit' directly instead of calling exit().
    this.on('exit', (code, signal) => {
      if (this.exited) return;
      this.exited = true;
      this.exitCode = code;
      this.exitSignal = signal;
      this.exitedAt = performance.now();
      for (const timer of this.timers) {
        clearTimeout(timer as NodeJS.Timeout);
        clearImmediate(timer as NodeJS.Immediate);
      }
      this.timers.clear();
    });
  }

  get generation(): number {
    return this.spec.generation;
  }

  send(message: unknown, callback: (error: Error | null) => void): void {
    if (this.exited) {
      setImmediate(() => callback(new Error('IPC channel closed')));
      return;
    }
    this.sent.push(message);
    setImmediate(() => {
      callback(null);
      if (this.exited) return;
      for (const handler of this.messageHandlers) handler(message);
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
    // Like a real process: the exit is reported later, and only once.
    setImmediate(() => this.exit(null, signal));
  }

  // ---- scripting helpers (for behaviours and tests) ----

  /** Runs fn after ms (next turn of the loop for 0) unless the process has exited by then. */
  after(ms: number, fn: () => void): void {
    if (this.exited) return;
    const run = () => {
      this.timers.delete(timer);
      if (!this.exited) fn();
    };
    const timer: NodeJS.Timeout | NodeJS.Immediate = ms > 0 ? setTimeout(run, ms) : setImmediate(run);
    this.timers.add(timer);
  }

  /** Reports the first server listening (now). */
  listen(address = '127.0.0.1:1'): void {
    if (!this.exited) this.emit('listening', address);
  }

  /** Sends the explicit ready message (now). */
  readyMessage(): void {
    if (!this.exited) this.emit('ready-message');
  }

  stderr(...lines: string[]): void {
    for (const line of lines) if (!this.exited) this.emit('stderr', line);
  }

  stdout(...lines: string[]): void {
    for (const line of lines) if (!this.exited) this.emit('stdout', line);
  }

  /** Reports that the process could not be spawned after all, then its exit (now), as the cluster launcher does. */
  failFork(error: Error): void {
    if (this.exited) return;
    this.emit('fork-failed', error);
    this.exit(null);
  }

  /** Reports the exit (now), once. */
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (!this.exited) this.emit('exit', code, signal);
  }

  /** Calls handler for every message delivered to this process (after send's callback). */
  onMessage(handler: (message: unknown) => void): void {
    this.messageHandlers.push(handler);
  }

  /** Calls handler when the master asks this process to drain. */
  onDrain(handler: (message: { liveswap: 'drain'; timeoutMs: number }) => void): void {
    this.onMessage((message) => {
      if (isDrainMessage(message)) handler(message);
    });
  }

  /** Has the master asked this process to drain? */
  get drainRequested(): boolean {
    return this.sent.some(isDrainMessage);
  }
}

/** Listening on the next turn of the loop; exits 0 shortly after a drain request. */
export const defaultBehaviour: Behaviour = (proc) => {
  proc.after(0, () => proc.listen());
  exitOnDrain(proc);
};

/** The well-behaved part of a worker: exit 0 shortly after a drain request. */
export function exitOnDrain(proc: FakeProcess, delayMs = 1): void {
  proc.onDrain(() => proc.after(delayMs, () => proc.exit(0)));
}

/** The error cluster.fork throws, or reports, when the OS refuses to create a process. */
export function forkError(code: 'ENOMEM' | 'EAGAIN' = 'ENOMEM'): NodeJS.ErrnoException {
  return Object.assign(new Error(`spawn ${code}`), { code, syscall: 'spawn' });
}

export interface FakeLauncherEvents {
  launch: [proc: FakeProcess];
}

export class FakeLauncher extends EventEmitter<FakeLauncherEvents> implements Launcher {
  /** Every process launched, in order. */
  readonly processes: FakeProcess[] = [];
  /**
   * When it returns an error for a launch, launch() throws it instead, as
   * cluster.fork does when the OS refuses (ENOMEM), and no process is made.
   * `attempt` counts every launch() call from 1, refused ones included.
   */
  refuse: ((spec: LaunchSpec, attempt: number) => Error | undefined) | undefined;
  /**
   * The id of the process made by the nth launch (from 0); counting up from 1
   * unless set. Spares make real ids arrive out of order: a spare that has
   * booted is handed out before an older one still booting.
   */
  idOf: ((index: number) => number) | undefined;
  private nextId = 1;
  private attempts = 0;

  constructor(public behave: Behaviour = defaultBehaviour) {
    super();
  }

  launch(spec: LaunchSpec): FakeProcess {
    const attempt = ++this.attempts;
    const refused = this.refuse?.(spec, attempt);
    if (refused) throw refused;
    const index = this.processes.length;
    const proc = new FakeProcess(this.idOf?.(index) ?? this.nextId++, spec);
    this.processes.push(proc);
    this.behave(proc, spec, index);
    this.emit('launch', proc);
    return proc;
  }

  ofGeneration(generation: number): FakeProcess[] {
    return this.processes.filter((p) => p.generation === generation);
  }

  /** Processes not yet exited. */
  running(): FakeProcess[] {
    return this.processes.filter((p) => !p.exited);
  }

  byId(id: number): FakeProcess {
    const proc = this.processes.find((p) => p.id === id);
    if (!proc) throw new Error(`no fake process ${id}`);
    return proc;
  }
}
