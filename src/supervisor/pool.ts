/**
 * The set of live workers and the primitive moves on them: spawn (with the
 * ready timeout enforced), drain (with the drain timeout enforced), kill, and
 * message. Policy — when to spawn, whom to drain, what a crash means — lives
 * in the master and the upgrade; the pool only does what it is told and
 * reports every transition.
 */
import { EventEmitter } from 'node:events';
import type { LaunchSpec, Launcher, WorkerProcess } from './launcher.js';
import { summarizeStderr } from './output.js';
import { WorkerHandle, type ExitInfo, type TransitionEvent, type WorkerHandleOptions, type WorkerStateName } from './worker-handle.js';

export interface WorkerCounts {
  starting: number;
  ready: number;
  draining: number;
}

export interface PoolTransition extends TransitionEvent {
  counts: WorkerCounts;
  /** 1, 2, 3, … over the pool's lifetime. */
  sequence: number;
}

export interface PoolEvents {
  transition: [event: PoolTransition];
  output: [worker: WorkerHandle, stream: 'stdout' | 'stderr', line: string];
  exit: [worker: WorkerHandle, info: ExitInfo];
}

/**
 * cluster.fork threw: the OS refused to create a worker process (ENOMEM…).
 * (A spawn that fails after fork returned, EAGAIN…, is a worker that exits
 * at once instead: its handle's forkError says why.)
 */
export class ForkFailed extends Error {
  constructor(readonly osError: Error) {
    super(`could not fork a worker: ${osError.message}`);
    this.name = 'ForkFailed';
  }
}

/** Anything not given is 0, or no addresses. */
export interface SpawnOptions extends Partial<WorkerHandleOptions> {
  readyTimeoutMs: number;
}

export class Pool extends EventEmitter<PoolEvents> {
  private readonly workers = new Map<number, WorkerHandle>();
  /** The pending SIGKILL of each draining worker at its drain timeout. */
  private readonly drainTimers = new Map<WorkerHandle, NodeJS.Timeout>();
  private sequence = 0;

  constructor(private readonly launcher: Launcher) {
    super();
  }

  /** The sequence number of the most recent transition (0 before the first). */
  get lastSequence(): number {
    return this.sequence;
  }

  /** Every worker not yet exited, oldest first. */
  list(): WorkerHandle[] {
    return [...this.workers.values()];
  }

  /** Live (starting or ready) workers, oldest first; only of `generation` if given. */
  live(generation?: number): WorkerHandle[] {
    return this.list().filter((w) => w.isLive && (generation === undefined || w.generation === generation));
  }

  /** Live workers of every generation but `generation`, oldest first. */
  liveExcept(generation: number): WorkerHandle[] {
    return this.list().filter((w) => w.isLive && w.generation !== generation);
  }

  /** Ready workers, oldest first; only of `generation` if given. */
  ready(generation?: number): WorkerHandle[] {
    return this.list().filter((w) => w.state === 'ready' && (generation === undefined || w.generation === generation));
  }

  counts(): WorkerCounts {
    const counts: WorkerCounts = { starting: 0, ready: 0, draining: 0 };
    for (const worker of this.workers.values()) {
      if (worker.state !== 'exited') counts[worker.state]++;
    }
    return counts;
  }

  /** Forks a worker; throws ForkFailed, and changes nothing, when the OS refuses. */
  spawn(spec: LaunchSpec, options: SpawnOptions): WorkerHandle {
    let process: WorkerProcess;
    try {
      process = this.launcher.launch(spec);
    } catch (error) {
      throw new ForkFailed(error instanceof Error ? error : new Error(String(error)));
    }
    const handle = new WorkerHandle(
      process,
      spec,
      { restarts: options.restarts ?? 0, crashStreak: options.crashStreak ?? 0, expectAddresses: options.expectAddresses ?? [] },
      (event) => this.emit('transition', { ...event, counts: this.counts(), sequence: ++this.sequence }),
    );
    this.workers.set(handle.id, handle);
    handle.announce();

    const readyTimer = setTimeout(() => {
      if (handle.state !== 'starting') return;
      handle.recordReadyTimeout();
      process.kill('SIGKILL');
    }, options.readyTimeoutMs);
    const becomeReady = (reason: string) => {
      // Too late once the ready timeout has fired: the SIGKILL is on its way.
      if (handle.state !== 'starting' || handle.readyTimedOut) return;
      clearTimeout(readyTimer);
      handle.transition('ready', reason);
    };
    process.on('listening', (address) => {
      handle.recordListening(address);
      const enough = spec.readyMode === 'first-listen' || (spec.readyMode === 'listening' && handle.missingAddresses().length === 0);
      if (enough) becomeReady(`listening on ${[...handle.listening].join(', ')}`);
    });
    process.on('closed', (address) => handle.recordClosed(address));
    process.once('fork-failed', (error) => handle.recordForkFailure(error));
    if (spec.readyMode === 'message') process.on('ready-message', () => becomeReady('sent the ready message'));
    process.on('stdout', (line) => this.emit('output', handle, 'stdout', line));
    process.on('stderr', (line) => {
      handle.recordStderr(line);
      this.emit('output', handle, 'stderr', line);
    });
    process.once('exit', (code, signal) => {
      clearTimeout(readyTimer);
      clearTimeout(this.drainTimers.get(handle));
      this.drainTimers.delete(handle);
      const info = handle.recordExit(code, signal, describeExit(handle, code, signal, options.readyTimeoutMs));
      this.workers.delete(handle.id);
      this.emit('exit', handle, info);
    });
    return handle;
  }

  /**
   * Ask a worker to finish what it is doing and exit; SIGKILL it at the
   * timeout. A worker still starting serves nothing yet and is killed at once.
   */
  drain(handle: WorkerHandle, timeoutMs: number, reason: string): Promise<ExitInfo> {
    if (!handle.isLive) return handle.exited;
    handle.recordStopRequest();
    if (handle.state === 'starting') {
      handle.process.kill('SIGKILL');
      return handle.exited;
    }
    handle.transition('draining', reason);
    handle.process.send({ liveswap: 'drain', timeoutMs }, () => {
      // Not written means the channel is gone, so the worker is exiting anyway.
    });
    this.drainTimers.set(
      handle,
      setTimeout(() => {
        handle.recordDrainTimeout();
        handle.process.kill('SIGKILL');
      }, timeoutMs),
    );
    return handle.exited;
  }

  /** SIGKILL a worker in any state. */
  kill(handle: WorkerHandle): Promise<ExitInfo> {
    if (handle.state !== 'exited') {
      handle.recordKillRequest();
      handle.process.kill('SIGKILL');
    }
    return handle.exited;
  }

  /** Deliver a value to every ready worker; resolves to the ids it was written to. */
  async broadcast(value: unknown): Promise<number[]> {
    const targets = this.ready();
    const results = await Promise.all(
      targets.map(
        (worker) =>
          new Promise<number | undefined>((resolve) =>
            worker.process.send({ liveswap: 'broadcast', value }, (error) => resolve(error ? undefined : worker.id)),
          ),
      ),
    );
    // Ascending, as the proto promises: the pool's order is the order workers were handed
    // out, which spares make differ from the order of their ids.
    return results.filter((id): id is number => id !== undefined).sort((a, b) => a - b);
  }
}

function readinessWord(handle: WorkerHandle): string {
  return handle.spec.readyMode === 'message' ? 'sending the ready message' : 'listening';
}

function missedReadiness(handle: WorkerHandle, readyTimeoutMs: number): string {
  if (handle.spec.readyMode === 'message') return `did not send the ready message within ${readyTimeoutMs} ms (killed)`;
  const missing = handle.spec.readyMode === 'listening' ? handle.missingAddresses() : [];
  const listens = handle.listening.size > 0 ? ` (it listens on ${[...handle.listening].join(', ')})` : '';
  const where = missing.length > 0 ? ` on ${missing.join(', ')}${listens}` : '';
  return `did not start listening${where} within ${readyTimeoutMs} ms (killed)`;
}

function exitWords(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/** One sentence a person can act on, saying how and why a worker ended. */
function describeExit(
  handle: WorkerHandle,
  code: number | null,
  signal: NodeJS.Signals | null,
  readyTimeoutMs: number,
): string {
  const from: WorkerStateName = handle.state;
  const summary = summarizeStderr(handle.stderrTail);
  const because = summary ? `: ${summary}` : '';
  if (handle.forkError) return `could not be forked: ${handle.forkError.message}`;
  if (handle.readyTimedOut) return missedReadiness(handle, readyTimeoutMs);
  if (handle.killedAtDrainTimeout) return 'killed at the drain timeout';
  if (handle.killRequested || (handle.stopRequested && from !== 'draining')) return `stopped (${exitWords(code, signal)})`;
  switch (from) {
    case 'starting':
      return `${exitWords(code, signal)} before ${readinessWord(handle)}${because}`;
    case 'ready':
      return code === 0 ? `exited on its own with code 0${because}` : `crashed: ${exitWords(code, signal)}${because}`;
    case 'draining':
      return code === 0 ? 'drained' : `${exitWords(code, signal)} while draining${because}`;
    case 'exited':
      return handle.reason;
  }
}
