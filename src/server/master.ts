/**
 * The master: owns the pool, the current release and the one operation that
 * may run at a time (Start, Upgrade, Kill; Die cancels whichever runs).
 * Between operations it keeps the pool at full size, respawning crashed
 * workers with exponential backoff.
 *
 * It knows nothing of gRPC: the service maps requests to these methods and
 * LiveswapError codes to statuses.
 */
import { EventEmitter } from 'node:events';
import { checkCallDurations, checkForks, type MasterConfig } from './config.js';
import { isJsonValue } from '../json.js';
import { aborted, failedPrecondition, invalidArgument, LiveswapError, Status, unavailable } from './errors.js';
import { runPreUpgradeHook } from './hook.js';
import { ClusterLauncher, type LaunchSpec, type Launcher, type ReadyMode } from './launcher.js';
import type { Logger } from './logger.js';
import { Pool, type PoolTransition, type SpawnOptions, type WorkerCounts } from './pool.js';
import { allReadyOrFirstFailure } from './readiness.js';
import { resolveTarget } from './target.js';
import { rollingUpgrade } from './upgrade.js';
import { Cancelled, cancellable } from './wait.js';
import type { WorkerHandle, WorkerInfo } from './worker-handle.js';

export type OperationName = 'start' | 'upgrade' | 'kill' | 'die';

export interface StartOptions {
  forks?: number;
  readyMode?: ReadyMode;
  readyTimeoutMs?: number;
}

export interface UpgradeOptions {
  readyMode?: ReadyMode;
  readyTimeoutMs?: number;
  drainTimeoutMs?: number;
  /** Passed to the pre-upgrade hook as data.extra. */
  hookData?: unknown;
}

export interface DieOptions {
  force?: boolean;
  drainTimeoutMs?: number;
}

export interface StartResult {
  generation: number;
  workers: WorkerInfo[];
}
export interface UpgradeResult {
  generation: number;
  target: string;
  workers: WorkerInfo[];
  durationMs: number;
  killedAtDrainTimeout: number;
}
export interface KillResult {
  killed: number;
  workers: WorkerInfo[];
}
export interface DieResult {
  stopped: number;
  killed: number;
}
export interface BroadcastResult {
  delivered: number;
  workerIds: number[];
}
export interface MasterStatus {
  workers: WorkerInfo[];
  counts: WorkerCounts;
  generation: number;
  target: string;
  forks: number;
  operation: OperationName | '';
  masterPid: number;
  masterStartedAt: Date;
  restarts: number;
  /** The sequence number of the most recent transition. */
  sequence: number;
  /** The current release's ready mode (the configured default before the first start). */
  readyMode: ReadyMode;
  /** Crashed workers waiting out their backoff. */
  respawnsPending: number;
  /** The most recent worker that exited without being asked to, as it was when it exited. */
  lastCrash?: WorkerInfo;
  /** Spare processes ready to become workers. */
  spares: number;
  /** Workers killed at the drain timeout since the master started. */
  killedAtDrainTimeout: number;
  /** The most recent of them, as it was when it exited. */
  lastKilledAtDrainTimeout?: WorkerInfo;
}

/** How an upgrade that got to run ended (one that could not start, e.g. another operation running, is not counted). */
export type UpgradeOutcomeName = 'ok' | 'rolled_back' | 'vetoed' | 'aborted' | 'failed';

export interface UpgradeReport {
  outcome: UpgradeOutcomeName;
  /** From the start of the operation (hook included) to its end (rollback included). */
  durationMs: number;
}

export interface MasterEvents {
  transition: [event: PoolTransition];
  /** An upgrade ended: succeeded, rolled back, vetoed by the hook, cancelled by Die, or failed otherwise. */
  upgrade: [report: UpgradeReport];
  /** A broadcast was delivered. */
  broadcast: [result: BroadcastResult];
  output: [worker: WorkerHandle, stream: 'stdout' | 'stderr', line: string];
  /** Every worker has stopped after Die; the owner should now close the control server and exit. */
  stopped: [];
}

interface RunningOperation {
  name: OperationName;
  startedAt: number;
  abort: AbortController;
  done: Promise<unknown>;
  /**
   * Crashes are the operation's business until it says otherwise: an upgrade
   * that has committed its new release lets crashed new workers be respawned
   * while it waits for the old ones to drain.
   */
  respawnsAllowed?: boolean;
}

export class Master extends EventEmitter<MasterEvents> {
  readonly pool: Pool;
  readonly startedAt = new Date();
  private current: LaunchSpec | undefined;
  private lastGeneration = 0;
  private operation: RunningOperation | undefined;
  private stopping: Promise<DieResult> | undefined;
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  private restarts = 0;
  private lastCrash: WorkerInfo | undefined;
  private killedAtDrainTimeout = 0;
  private lastKilledAtDrainTimeout: WorkerInfo | undefined;
  /** Die was asked to force: kill rather than drain. */
  private forced = false;

  constructor(
    readonly config: MasterConfig,
    private readonly log: Logger,
    private readonly launcher: Launcher = new ClusterLauncher(() => config.spares ?? Math.min(config.forks, config.maxSurge)),
  ) {
    super();
    this.pool = new Pool(launcher);
    this.pool.on('transition', (event) => this.emit('transition', event));
    this.pool.on('output', (worker, stream, line) => this.emit('output', worker, stream, line));
    this.pool.on('exit', (worker, info) => {
      if (worker.killedAtDrainTimeout) {
        this.killedAtDrainTimeout++;
        this.lastKilledAtDrainTimeout = worker.info();
      }
      if (info.expected) return;
      this.lastCrash = worker.info();
      this.onCrash(worker);
    });
  }

  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  status(): MasterStatus {
    return {
      workers: this.pool.list().map((w) => w.info()),
      counts: this.pool.counts(),
      generation: this.current?.generation ?? 0,
      target: this.current?.target ?? '',
      forks: this.config.forks,
      operation: this.stopping ? 'die' : (this.operation?.name ?? ''),
      masterPid: process.pid,
      masterStartedAt: this.startedAt,
      restarts: this.restarts,
      sequence: this.pool.lastSequence,
      readyMode: this.current?.readyMode ?? this.config.readyMode,
      respawnsPending: this.respawnTimers.size,
      spares: this.launcher.spares?.() ?? 0,
      ...(this.lastCrash && { lastCrash: this.lastCrash }),
      killedAtDrainTimeout: this.killedAtDrainTimeout,
      ...(this.lastKilledAtDrainTimeout && { lastKilledAtDrainTimeout: this.lastKilledAtDrainTimeout }),
    };
  }

  /** Fork the pool on a target; only when no worker is running. */
  async start(target: string, options: StartOptions = {}): Promise<StartResult> {
    const file = resolveTarget(target);
    if (options.forks !== undefined) checkForks(options.forks);
    checkCallDurations({ readyTimeoutMs: options.readyTimeoutMs });
    return this.exclusive('start', async (signal) => {
      const live = this.pool.live();
      if (live.length > 0) {
        throw failedPrecondition(
          `${live.length} worker(s) already run ${live[0]!.spec.target}; use Upgrade to change the code`,
        );
      }
      const forks = options.forks ?? this.config.forks;
      const spec = this.nextRelease(file, options.readyMode);
      const readyTimeoutMs = options.readyTimeoutMs || this.config.readyTimeoutMs;
      const workers = Array.from({ length: forks }, () => this.pool.spawn(spec, { readyTimeoutMs }));
      const failed = await cancellable(allReadyOrFirstFailure(workers), signal);
      if (failed) {
        await Promise.all(workers.map((w) => this.pool.kill(w)));
        throw failedPrecondition(`start failed: worker ${failed.id} ${failed.reason}`, failed.stderrTail.get());
      }
      this.config.forks = forks;
      this.current = spec;
      this.log.info(`generation ${spec.generation} serving ${spec.target} on ${forks} worker(s)`);
      return { generation: spec.generation, workers: workers.map((w) => w.info()) };
    });
  }

  /** Rolling upgrade to a new target (see upgrade.ts). */
  async upgrade(target: string, options: UpgradeOptions = {}): Promise<UpgradeResult> {
    const file = resolveTarget(target);
    checkCallDurations({ readyTimeoutMs: options.readyTimeoutMs, drainTimeoutMs: options.drainTimeoutMs });
    // For the `upgrade` event: set once the operation runs, and once the hook has agreed.
    let began: number | undefined;
    let hookPassed = false;
    // A finished upgrade reports the duration its reply carries, so the two never differ.
    const report = (outcome: UpgradeOutcomeName, durationMs = Date.now() - began!) => this.emit('upgrade', { outcome, durationMs });
    const result = this.exclusive('upgrade', async (signal) => {
      // On a master that has run nothing yet this is a start, one worker at a time.
      const from = this.current;
      const startedAt = Date.now();
      began = startedAt;
      if (this.config.preUpgrade) await this.askHook(file, from, options.hookData, signal);
      hookPassed = true;
      const to = this.nextRelease(file, options.readyMode ?? from?.readyMode);
      this.log.info(`upgrade to generation ${to.generation} (${to.target}) begins`);
      const outcome = await rollingUpgrade({
        pool: this.pool,
        forks: this.config.forks,
        from,
        to,
        readyTimeoutMs: options.readyTimeoutMs || this.config.readyTimeoutMs,
        drainTimeoutMs: options.drainTimeoutMs || this.config.drainTimeoutMs,
        stableMs: this.config.stableMs,
        maxSurge: this.config.maxSurge,
        cutover: this.config.cutover,
        signal,
        log: this.log,
        commit: () => {
          this.current = to;
          if (this.operation) this.operation.respawnsAllowed = true;
        },
      });
      const durationMs = Date.now() - startedAt;
      this.log.info(`upgrade to generation ${to.generation} done in ${durationMs} ms`);
      return {
        generation: to.generation,
        target: to.target,
        workers: outcome.workers.map((w) => w.info()),
        durationMs,
        killedAtDrainTimeout: outcome.killedAtDrainTimeout,
      };
    });
    result.then(
      (done) => report('ok', done.durationMs),
      (error: unknown) => {
        if (began !== undefined) report(upgradeOutcomeOf(error, hookPassed));
      },
    );
    return result;
  }

  /** SIGKILL every worker, then fork a fresh pool on the current target. */
  kill(): Promise<KillResult> {
    return this.exclusive('kill', async (signal) => {
      const spec = this.current;
      if (!spec) throw failedPrecondition('nothing has been started yet: use Start or Upgrade (liveswap -u FILE) first');
      const victims = this.pool.list();
      await cancellable(Promise.all(victims.map((w) => this.pool.kill(w))), signal);
      const readyTimeoutMs = this.config.readyTimeoutMs;
      const workers = Array.from({ length: this.config.forks }, () => this.pool.spawn(spec, { readyTimeoutMs }));
      const failed = await cancellable(allReadyOrFirstFailure(workers), signal);
      if (failed) {
        throw failedPrecondition(
          `killed ${victims.length} worker(s) but the respawn failed: worker ${failed.id} ${failed.reason}`,
          failed.stderrTail.get(),
        );
      }
      return { killed: victims.length, workers: workers.map((w) => w.info()) };
    });
  }

  /** Deliver a JSON value to every ready worker. */
  async broadcast(value: unknown): Promise<BroadcastResult> {
    if (!isJsonValue(value)) {
      throw invalidArgument('the message must be a JSON value: a string, number, boolean, null, array or object');
    }
    if (this.stopping) throw unavailable('the master is shutting down');
    if (this.pool.ready().length === 0) throw failedPrecondition('no ready worker to deliver the message to');
    const workerIds = await this.pool.broadcast(value);
    const result = { delivered: workerIds.length, workerIds };
    this.emit('broadcast', result);
    return result;
  }

  /**
   * Stop every worker (drain, or SIGKILL with force), cancelling the running
   * operation first, then emit `stopped`. Calling it again returns the same result.
   */
  die(options: DieOptions = {}): Promise<DieResult> {
    try {
      checkCallDurations({ drainTimeoutMs: options.drainTimeoutMs });
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.stopping && options.force && !this.forced) {
      // Already stopping gracefully and asked again with force (a second Ctrl-C): stop waiting.
      this.log.warn('forced stop: killing every worker now');
      for (const worker of this.pool.list()) void this.pool.kill(worker);
    }
    this.forced ||= Boolean(options.force);
    this.stopping ??= this.stopEverything(options);
    return this.stopping;
  }

  private async stopEverything(options: DieOptions): Promise<DieResult> {
    this.launcher.close?.();
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    if (this.operation) {
      this.log.warn(`cancelling the ${this.operation.name} in progress: the master is shutting down`);
      this.operation.abort.abort();
      await this.operation.done.catch(() => {});
    }
    const drainTimeoutMs = options.drainTimeoutMs || this.config.drainTimeoutMs;
    const workers = this.pool.list();
    // A forced Die may have arrived while the running operation wound down.
    const force = options.force || this.forced;
    this.log.info(`stopping ${workers.length} worker(s)${force ? ' (force)' : ''}`);
    await Promise.all(
      workers.map((w) => (force ? this.pool.kill(w) : this.pool.drain(w, drainTimeoutMs, 'master stopping'))),
    );
    const killed = workers.filter((w) => w.killedAtDrainTimeout || w.killRequested).length;
    queueMicrotask(() => this.emit('stopped'));
    return { stopped: workers.length, killed };
  }

  private async exclusive<T>(name: OperationName, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.stopping) throw unavailable('the master is shutting down');
    if (this.operation) {
      const seconds = ((Date.now() - this.operation.startedAt) / 1000).toFixed(1);
      throw aborted(
        `${this.operation.name} in progress (started ${seconds} s ago); try again once it has finished`,
      );
    }
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    const abort = new AbortController();
    const done = Promise.resolve().then(() => run(abort.signal));
    this.operation = { name, startedAt: Date.now(), abort, done };
    try {
      return await done;
    } catch (error) {
      if (error instanceof Cancelled) throw unavailable(`${name} cancelled: the master is shutting down`);
      if (error instanceof LiveswapError) this.log.warn(error.message);
      throw error;
    } finally {
      this.operation = undefined;
      this.refill();
      // The operation's boots are over: boot the spares the next one will use now,
      // rather than a while after the last launch.
      if (!this.stopping) this.launcher.prepareSpares?.();
    }
  }

  private nextRelease(target: string, readyMode: ReadyMode | undefined): LaunchSpec {
    return { target, generation: ++this.lastGeneration, readyMode: readyMode ?? this.config.readyMode };
  }

  private async askHook(
    target: string,
    from: LaunchSpec | undefined,
    extra: unknown,
    signal: AbortSignal,
  ): Promise<void> {
    const data = {
      target,
      previousTarget: from?.target ?? '',
      generation: this.lastGeneration + 1,
      workers: this.pool.list().map((w) => ({ id: w.id, pid: w.pid, state: w.state, generation: w.generation })),
      extra: extra ?? null,
    };
    const verdict = await cancellable(
      runPreUpgradeHook(this.config.preUpgrade!, data, {
        timeoutMs: this.config.hookTimeoutMs,
        onOutput: (line) => this.log.info(`[pre-upgrade hook] ${line}`),
        signal,
      }),
      signal,
    );
    if (!verdict.allowed) throw failedPrecondition(verdict.reason, verdict.stderrTail);
  }

  private respawnsAllowed(): boolean {
    return this.operation === undefined || this.operation.respawnsAllowed === true;
  }

  private liveOfCurrent(): number {
    return this.current ? this.pool.live(this.current.generation).length : 0;
  }

  /** After an operation: bring the current release back to full size at once. */
  private refill(): void {
    const spec = this.current;
    if (!spec || this.stopping) return;
    const missing = this.config.forks - this.liveOfCurrent() - this.respawnTimers.size;
    for (let i = 0; i < missing; i++) this.spawnOutsideOperation(spec, { readyTimeoutMs: this.config.readyTimeoutMs });
    void this.retireStrays(spec);
  }

  /**
   * A fork that fails outright (the OS refused: ENOMEM, EAGAIN…) is logged, not
   * thrown: here no caller could handle it, and a throw from a timer would take
   * the master and every worker down with it. The next crash or operation
   * tries again.
   */
  private spawnOutsideOperation(spec: LaunchSpec, options: SpawnOptions): void {
    try {
      this.pool.spawn(spec, options);
    } catch (error) {
      this.log.error(`could not fork a worker for generation ${spec.generation}: ${(error as Error).message}`);
    }
  }

  /**
   * Workers of another generation can outlive an operation only when a
   * rollback could not restore the old release and kept the new workers
   * serving rather than leave nothing. Once the current release is back at
   * full strength they are drained, so the pool never stays on mixed versions.
   */
  private async retireStrays(spec: LaunchSpec): Promise<void> {
    if (this.pool.liveExcept(spec.generation).length === 0) return;
    const failed = await allReadyOrFirstFailure(this.pool.live(spec.generation));
    if (failed || this.operation || this.stopping || this.current !== spec) return;
    if (this.pool.ready(spec.generation).length < this.config.forks) return;
    for (const stray of this.pool.liveExcept(spec.generation)) {
      void this.pool.drain(stray, this.config.drainTimeoutMs, `generation ${spec.generation} is back at full strength`);
    }
  }

  /**
   * A worker exited without being asked to. Outside an operation, respawn it
   * after a backoff that doubles with each crash in a row of that slot and
   * resets once a worker has stayed ready for backoffResetMs.
   * During an operation, the operation accounts for it (unless it allows
   * respawns, as an upgrade does once it has committed) and refill() follows.
   */
  private onCrash(worker: WorkerHandle): void {
    const spec = this.current;
    if (this.stopping || !this.respawnsAllowed() || !spec || worker.generation !== spec.generation) return;
    const stayedReadyLongEnough =
      worker.readyAt !== undefined && Date.now() - worker.readyAt.getTime() >= this.config.backoffResetMs;
    const streak = stayedReadyLongEnough ? 1 : worker.crashStreak + 1;
    const delayMs = Math.min(this.config.backoffInitialMs * 2 ** (streak - 1), this.config.backoffMaxMs);
    this.log.warn(`worker ${worker.id} ${worker.reason}; respawning in ${delayMs} ms (crash ${streak} in a row)`);
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      if (this.stopping || !this.respawnsAllowed() || this.current !== spec) return;
      if (this.liveOfCurrent() >= this.config.forks) return;
      this.restarts++;
      this.spawnOutsideOperation(spec, {
        readyTimeoutMs: this.config.readyTimeoutMs,
        restarts: worker.restarts + 1,
        crashStreak: streak,
      });
      void this.retireStrays(spec);
    }, delayMs);
    this.respawnTimers.add(timer);
  }
}

/** A failed upgrade's outcome, from the error exclusive() rethrew and how far it got. */
function upgradeOutcomeOf(error: unknown, hookPassed: boolean): UpgradeOutcomeName {
  if (!(error instanceof LiveswapError)) return 'failed';
  if (error.code === Status.UNAVAILABLE) return 'aborted'; // cancelled by Die
  if (error.code === Status.FAILED_PRECONDITION) return hookPassed ? 'rolled_back' : 'vetoed';
  return 'failed';
}
