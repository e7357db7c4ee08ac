/**
 * One worker, as the master sees it, and the only place its state changes.
 *
 *   starting ──> ready ──> draining ──> exited
 *       │          │                      ▲
 *       └──────────┴──────────────────────┘   (boot failure, crash, kill)
 *
 * transition() checks the move is legal, records it, and emits exactly one
 * event; that event feeds the log, WatchWorkers and GetStatus alike.
 */
import type { ReadyMode } from '../common/config.js';
import type { LaunchSpec, WorkerProcess } from './launcher.js';
import { TailBuffer } from './output.js';

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
  /** Its last stderr lines, once it has exited without being asked to. */
  stderrTail?: string[];
}

/** How many stderr lines a crashed worker's info carries. */
export const CRASH_TAIL_LINES = 20;

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

export class WorkerHandle {
  state: WorkerStateName = 'starting';
  readonly startedAt = new Date();
  readyAt?: Date;
  exitCode?: number;
  exitSignal?: string;
  reason = 'forked';
  /** Set when the master asks the worker to stop, so its exit is not a crash. */
  stopRequested = false;
  /** Set when the master killed it on purpose (Kill, a forced Die). */
  killRequested = false;
  /** Set when the master had to SIGKILL it at the drain timeout. */
  killedAtDrainTimeout = false;
  readonly stderrTail = new TailBuffer(50);
  /** Addresses the worker listens on ("127.0.0.1:1337", "/run/app.sock"). */
  readonly listening = new Set<string>();
  /** Addresses it must listen on before it counts as ready (listening mode). */
  expectAddresses: readonly string[] = [];
  /** The pending SIGKILL at the drain timeout. */
  drainTimer?: NodeJS.Timeout;
  /** Set when the worker is killed for missing its ready timeout. */
  readyTimedOut = false;
  /** Set when it exited without being asked to (a crash, a boot failure, a missed ready timeout). */
  crashed = false;
  /** Resolves once the process is gone. */
  readonly exited: Promise<ExitInfo>;
  /** Resolves true when the worker becomes ready, false if it exits first. */
  readonly readyOrExited: Promise<boolean>;
  private resolveExited!: (info: ExitInfo) => void;
  private resolveReady!: (ready: boolean) => void;

  constructor(
    readonly process: WorkerProcess,
    readonly spec: LaunchSpec,
    readonly restarts: number,
    readonly crashStreak: number,
    private readonly onTransition: (event: TransitionEvent) => void,
  ) {
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
  get isLive(): boolean {
    return this.state === 'starting' || this.state === 'ready';
  }

  missingAddresses(): string[] {
    return this.expectAddresses.filter((address) => !this.listening.has(address));
  }

  /** Announce the worker's birth (from: undefined → starting). */
  announce(): void {
    this.onTransition({ worker: this.info(), from: undefined, to: 'starting', time: this.startedAt });
  }

  transition(to: WorkerStateName, reason: string): boolean {
    const from = this.state;
    if (!LEGAL[from].includes(to)) return false;
    this.state = to;
    this.reason = reason;
    const time = new Date();
    if (to === 'ready') this.readyAt = time;
    this.onTransition({ worker: this.info(), from, to, time });
    if (to === 'ready') this.resolveReady(true);
    return true;
  }

  /** Record the exit and move to `exited`. Called once, by the pool. */
  markExited(code: number | null, signal: NodeJS.Signals | null, reason: string): ExitInfo {
    const exitedFrom = this.state;
    if (code !== null) this.exitCode = code;
    if (signal !== null) this.exitSignal = signal;
    this.crashed = !this.stopRequested;
    this.transition('exited', reason);
    this.resolveReady(false);
    const info: ExitInfo = { code, signal, expected: this.stopRequested, exitedFrom };
    this.resolveExited(info);
    return info;
  }

  info(): WorkerInfo {
    return {
      id: this.id,
      pid: this.pid,
      state: this.state,
      generation: this.generation,
      target: this.spec.target,
      readyMode: this.spec.readyMode,
      startedAt: this.startedAt,
      ...(this.readyAt && { readyAt: this.readyAt }),
      restarts: this.restarts,
      ...(this.exitCode !== undefined && { exitCode: this.exitCode }),
      ...(this.exitSignal !== undefined && { exitSignal: this.exitSignal }),
      reason: this.reason,
      listening: [...this.listening],
      ...(this.crashed && { stderrTail: this.stderrTail.get().slice(-CRASH_TAIL_LINES) }),
    };
  }
}
