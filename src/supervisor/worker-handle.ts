/**
 * One worker, as the master sees it, and the only place its state changes.
 *
 *   starting ──> ready ──> draining ──> exited
 *       │          │                      ▲
 *       └──────────┴──────────────────────┘   (boot failure, crash, kill)
 *
 * transition() checks the move is legal, records it, and emits exactly one
 * event; that event feeds the log, WatchWorkers and GetStatus alike. The
 * other facts that decide what an exit means (the master asked it to stop,
 * killed it, it missed its ready timeout…) are recorded by the record*()
 * methods, each named for its fact; everything else reads them.
 */
import type { ReadyMode } from '../common/config.js';
import type { LaunchSpec, WorkerProcess } from './launcher.js';
import { TailBuffer, tailWithin } from './output.js';

export type WorkerStateName = 'starting' | 'ready' | 'draining' | 'exited';

const LEGAL: Record<WorkerStateName, readonly WorkerStateName[]> = {
  // A worker still starting is killed rather than drained: it serves nothing yet.
  starting: ['ready', 'exited'],
  ready: ['draining', 'exited'],
  draining: ['exited'],
  exited: [],
};

/** A plain copy of a worker's fields, safe to hand out. */
export interface WorkerInfo {
  id: number;
  pid: number;
  state: WorkerStateName;
  generation: number;
  target: string;
  readyMode: ReadyMode;
  startedAt: Date;
  readyAt?: Date;
  restarts: number;
  exitCode?: number;
  exitSignal?: string;
  reason: string;
  /** Addresses it listens on. */
  listening: string[];
  /** The Node.js version it runs on. */
  nodeVersion: string;
  /** Its last stderr lines, once it has exited without being asked to. */
  stderrTail?: string[];
}

/** How many stderr lines a crashed worker's info carries. */
export const CRASH_TAIL_LINES = 20;
/** …and at most this many characters of them (output.ts tailWithin). */
export const CRASH_TAIL_CHARS = 4096;

export interface TransitionEvent {
  worker: WorkerInfo;
  from: WorkerStateName | undefined;
  to: WorkerStateName;
  time: Date;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The master asked for this exit (drain or kill); anything else is a crash. */
  expected: boolean;
  /** The state the worker was in when it exited. */
  exitedFrom: WorkerStateName;
}

export interface WorkerHandleOptions {
  /** Crash restarts of this slot so far (shown in status). */
  restarts: number;
  /** Crashes in a row of this slot, for the respawn backoff. */
  crashStreak: number;
  /**
   * In listening mode, the worker is ready only once it listens on all of
   * these (an upgrade passes the addresses every old worker serves, so no
   * port is left without a worker); otherwise on its first listen.
   */
  expectAddresses: readonly string[];
}

export class WorkerHandle {
  readonly startedAt = new Date();
  readonly restarts: number;
  readonly crashStreak: number;
  readonly expectAddresses: readonly string[];
  /** Resolves once the process is gone. */
  readonly exited: Promise<ExitInfo>;
  /** Resolves true when the worker becomes ready, false if it exits first. */
  readonly readyOrExited: Promise<boolean>;

  #state: WorkerStateName = 'starting';
  #reason = 'forked';
  #readyAt: Date | undefined;
  #exitCode: number | undefined;
  #exitSignal: string | undefined;
  #stopRequested = false;
  #killRequested = false;
  #killedAtDrainTimeout = false;
  #readyTimedOut = false;
  #forkError: Error | undefined;
  /** It exited without being asked to (a crash, a boot failure, a missed ready timeout). */
  #crashed = false;
  readonly #stderr = new TailBuffer(50);
  readonly #listening = new Set<string>();
  private resolveExited!: (info: ExitInfo) => void;
  private resolveReady!: (ready: boolean) => void;

  constructor(
    readonly process: WorkerProcess,
    readonly spec: LaunchSpec,
    options: WorkerHandleOptions,
    private readonly onTransition: (event: TransitionEvent) => void,
  ) {
    this.restarts = options.restarts;
    this.crashStreak = options.crashStreak;
    this.expectAddresses = options.expectAddresses;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    this.readyOrExited = new Promise((resolve) => (this.resolveReady = resolve));
  }

  get id(): number {
    return this.process.id;
  }
  get pid(): number {
    return this.process.pid;
  }
  get generation(): number {
    return this.spec.generation;
  }
  get state(): WorkerStateName {
    return this.#state;
  }
  get isLive(): boolean {
    return this.#state === 'starting' || this.#state === 'ready';
  }
  /** Why it is in its state, in words. */
  get reason(): string {
    return this.#reason;
  }
  get readyAt(): Date | undefined {
    return this.#readyAt;
  }
  /** The master asked it to stop (drain or kill), so its exit is not a crash. */
  get stopRequested(): boolean {
    return this.#stopRequested;
  }
  /** The master killed it on purpose (Kill, a forced Die). */
  get killRequested(): boolean {
    return this.#killRequested;
  }
  /** The master had to SIGKILL it at the drain timeout. */
  get killedAtDrainTimeout(): boolean {
    return this.#killedAtDrainTimeout;
  }
  /** It was killed for missing its ready timeout. */
  get readyTimedOut(): boolean {
    return this.#readyTimedOut;
  }
  /** Why its process could not be created, if it could not (the spawn failed after fork returned). */
  get forkError(): Error | undefined {
    return this.#forkError;
  }
  /** Addresses the worker listens on ("127.0.0.1:1337", "/run/app.sock"). */
  get listening(): ReadonlySet<string> {
    return this.#listening;
  }
  /** Its last stderr lines. */
  get stderrTail(): string[] {
    return this.#stderr.get();
  }

  missingAddresses(): string[] {
    return this.expectAddresses.filter((address) => !this.#listening.has(address));
  }

  /** Announce the worker's birth (from: undefined → starting). */
  announce(): void {
    this.onTransition({ worker: this.info(), from: undefined, to: 'starting', time: this.startedAt });
  }

  transition(to: WorkerStateName, reason: string): boolean {
    const from = this.#state;
    if (!LEGAL[from].includes(to)) return false;
    this.#state = to;
    this.#reason = reason;
    const time = new Date();
    if (to === 'ready') this.#readyAt = time;
    this.onTransition({ worker: this.info(), from, to, time });
    if (to === 'ready') this.resolveReady(true);
    return true;
  }

  recordListening(address: string): void {
    this.#listening.add(address);
  }

  recordClosed(address: string): void {
    this.#listening.delete(address);
  }

  recordStderr(line: string): void {
    this.#stderr.push(line);
  }

  /** The master asked it to stop: drain, or a kill while it was still starting. */
  recordStopRequest(): void {
    this.#stopRequested = true;
  }

  /** The master is killing it on purpose (Kill, a forced Die). */
  recordKillRequest(): void {
    this.#stopRequested = true;
    this.#killRequested = true;
  }

  /** It did not become ready in time; the master is killing it (still a failure, not a stop). */
  recordReadyTimeout(): void {
    this.#readyTimedOut = true;
  }

  /** It was still draining at the drain timeout; the master is killing it. */
  recordDrainTimeout(): void {
    this.#killedAtDrainTimeout = true;
  }

  /** Its process could not be created after all; its exit follows. */
  recordForkFailure(error: Error): void {
    this.#forkError = error;
  }

  /** Record the exit and move to `exited`. Called once, by the pool. */
  recordExit(code: number | null, signal: NodeJS.Signals | null, reason: string): ExitInfo {
    const exitedFrom = this.#state;
    if (code !== null) this.#exitCode = code;
    if (signal !== null) this.#exitSignal = signal;
    this.#crashed = !this.#stopRequested;
    this.transition('exited', reason);
    this.resolveReady(false);
    const info: ExitInfo = { code, signal, expected: this.#stopRequested, exitedFrom };
    this.resolveExited(info);
    return info;
  }

  info(): WorkerInfo {
    return {
      id: this.id,
      pid: this.pid,
      state: this.#state,
      generation: this.generation,
      target: this.spec.target,
      readyMode: this.spec.readyMode,
      startedAt: this.startedAt,
      ...(this.#readyAt && { readyAt: this.#readyAt }),
      restarts: this.restarts,
      ...(this.#exitCode !== undefined && { exitCode: this.#exitCode }),
      ...(this.#exitSignal !== undefined && { exitSignal: this.#exitSignal }),
      reason: this.#reason,
      listening: [...this.#listening],
      nodeVersion: this.spec.nodeVersion,
      ...(this.#crashed && { stderrTail: tailWithin(this.#stderr.get().slice(-CRASH_TAIL_LINES), CRASH_TAIL_CHARS) }),
    };
  }
}
