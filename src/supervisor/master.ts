/**
 * The master: owns the pool and the current release, and runs the operations
 * on them (Start, Upgrade, Kill, Broadcast, Die), one at a time
 * (operation-lock.ts; Die cancels whichever runs). Between operations the
 * reconciler keeps the pool at full size (reconciler.ts).
 *
 * It knows nothing of gRPC: the service maps requests to these methods and
 * LiveswapError codes to statuses.
 */
import { EventEmitter } from 'node:events';
import { checkCallDurations, checkForks, type MasterConfig } from '../common/config.js';
import { isJsonValue } from '../common/json.js';
import { failedPrecondition, invalidArgument, LiveswapError, Status, unavailable } from '../common/errors.js';
import { runPreUpgradeHook, type HookVerdict } from './hook.js';
import type { ReadyMode } from '../common/config.js';
import { ClusterLauncher, type LaunchSpec, type Launcher } from './launcher.js';
import type { Logger } from '../common/logger.js';
import type { Origin } from '../common/origin.js';
import { Follower } from './follower.js';
import { OperationLock, type OperationName } from './operation-lock.js';
import { ForkFailed, Pool, type PoolTransition, type WorkerCounts } from './pool.js';
import { allReadyOrFirstFailure } from './readiness.js';
import { resolveTarget } from '../common/target.js';
import { OWN_NODE, probeNode, type NodeBinary } from './node-binary.js';
import type { HandedRelease } from '../common/handover.js';
import { rollingUpgrade, type UpgradeOutcome, type UpgradeOutcomeName } from './upgrade.js';
import { Reconciler } from './reconciler.js';
import { Cancelled, cancellable } from './wait.js';
import type { WorkerHandle, WorkerInfo } from './worker-handle.js';

export interface StartOptions {
  /** Who asks (default 'api'). */
  origin?: Origin;
  forks?: number;
  readyMode?: ReadyMode;
  readyTimeoutMs?: number;
  /** @internal a successor master boots the release its predecessor served, as the same generation. */
  continues?: HandedRelease;
}

export interface UpgradeMasterOptions {
  /** Absolute path of the Node.js binary the successor runs on (default: this master's). */
  node?: string;
  /** How long the successor may take to start with its pool ready (default: the ready timeout plus 20 s). */
  readyTimeoutMs?: number;
  /** How long this master's workers may take to drain once the successor serves. */
  drainTimeoutMs?: number;
}

export interface UpgradeMasterResult {
  oldMasterPid: number;
  newMasterPid: number;
  nodeVersion: string;
  durationMs: number;
}

/**
 * How a master gets a successor (run.ts provides it for a CLI master): starts
 * it on the release and pool size given, and resolves once it serves, or
 * throws why not, with the successor gone.
 */
export type SuccessorStarter = (request: {
  node: NodeBinary;
  release: HandedRelease | undefined;
  forks: number;
  timeoutMs: number;
  signal: AbortSignal;
}) => Promise<{ pid: number; nodeVersion: string }>;

/** Time a successor gets beyond the ready timeout: Node's start-up, the control service, the pool's forks. */
const SUCCESSOR_GRACE_MS = 20_000;

export interface UpgradeOptions {
  /** Who asks (default 'api'): logged, counted in the metrics, shown in GetStatus and WatchWorkers. */
  origin?: Origin;
  readyMode?: ReadyMode;
  readyTimeoutMs?: number;
  drainTimeoutMs?: number;
  /** Passed to the pre-upgrade hook as data.extra. */
  hookData?: unknown;
  /** Absolute path of the Node.js binary the new workers run on (default: the master's own). */
  node?: string;
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
  /** The release this upgrade replaced ('' and 0 when there was none): an upgrade to it rolls back. */
  previousTarget: string;
  previousGeneration: number;
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
  /** The current target as it was given, before symlinks were resolved: what a reload resolves again. */
  requestedTarget: string;
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
  /** The most recent upgrade that ended, whoever asked for it. */
  lastUpgrade?: UpgradeReport;
  /** The release the current one replaced ('' and 0 when there was none): an upgrade to it rolls back. */
  previousTarget: string;
  previousGeneration: number;
  /** Who asked for the operation in progress. */
  operationOrigin?: Origin;
  /** The path the master follows (--follow), or ''. */
  following: string;
  /** The Node.js version the master runs on. */
  nodeVersion: string;
  /** The process a supervisor started, when it is not this one (after an UpgradeMaster); 0 otherwise. */
  keeperPid: number;
  /** Times the master process was replaced since the first one started. */
  masterUpgrades: number;
}

export type { Lineage } from '../common/handover.js';
import type { Lineage } from '../common/handover.js';

export interface UpgradeReport {
  origin: Origin;
  outcome: UpgradeOutcomeName;
  /** The file it upgraded to, symlinks resolved. */
  target: string;
  /** The path as it was given. */
  requestedTarget: string;
  /** The generation it made; 0 if it never forked (a veto). */
  generation: number;
  /** Why it did not succeed; '' on success. */
  reason: string;
  startedAt: Date;
  /** From the start of the operation (hook included) to its end (rollback included). */
  durationMs: number;
}

/** A worker transition, with who asked for the operation that caused it (none for a crash or its respawn). */
export interface MasterTransition extends PoolTransition {
  origin?: Origin;
}

export interface MasterEvents {
  transition: [event: MasterTransition];
  /** An operation (start, upgrade, kill) has ended and the master takes the next one. */
  idle: [];
  /** An upgrade ended: succeeded, rolled back, vetoed by the hook, cancelled by Die, or failed otherwise. */
  upgrade: [report: UpgradeReport];
  /** A broadcast was delivered. */
  broadcast: [result: BroadcastResult];
  output: [worker: WorkerHandle, stream: 'stdout' | 'stderr', line: string];
  /** Every worker has stopped after Die; the owner should now close the control server and exit. */
  stopped: [];
}

/**
 * A release: what its workers run (`target`, the real file a symlink named
 * when the release began) and the path as it was given (`requested`). Kill
 * and crash respawns run `target`, so a `current -> releases/N` link moved
 * meanwhile never changes the code of a running release; only an upgrade
 * (Upgrade, SIGHUP's reload of `requested`) moves to the new link target.
 */
interface Release extends LaunchSpec {
  requested: string;
}

export class Master extends EventEmitter<MasterEvents> {
  readonly pool: Pool;
  readonly startedAt = new Date();
  private current: Release | undefined;
  /** The release `current` replaced in an upgrade: what a rollback returns to. */
  private previous: Release | undefined;
  private lastUpgrade: UpgradeReport | undefined;
  /** Who asked for the operation under the lock. */
  private operationOrigin: Origin | undefined;
  private follower: Follower | undefined;
  private lastGeneration = 0;
  private readonly lock = new OperationLock();
  private readonly reconciler: Reconciler;
  private stopping: Promise<DieResult> | undefined;
  private killedAtDrainTimeout = 0;
  private lastKilledAtDrainTimeout: WorkerInfo | undefined;
  /** Die was asked to force: kill rather than drain. */
  private forced = false;
  /** Set by a successor master when it takes over (see run.ts). */
  lineage: Lineage = { keeperPid: 0, masterUpgrades: 0 };
  /** Set by run.ts on a master that can replace its own process. */
  successorStarter: SuccessorStarter | undefined;
  /** A successor serves in this master's place: it is draining its workers on the way out. */
  handedOver = false;

  constructor(
    readonly config: MasterConfig,
    private readonly log: Logger,
    private readonly launcher: Launcher = new ClusterLauncher(() => config.spares ?? Math.min(config.forks, config.maxSurge)),
  ) {
    super();
    this.pool = new Pool(launcher);
    this.pool.on('transition', (event) =>
      this.emit('transition', this.operationOrigin ? { ...event, origin: this.operationOrigin } : event),
    );
    this.pool.on('output', (worker, stream, line) => this.emit('output', worker, stream, line));
    this.reconciler = new Reconciler(this.pool, config, log, () => this.current);
    this.pool.on('exit', (worker) => {
      if (!worker.killedAtDrainTimeout) return;
      this.killedAtDrainTimeout++;
      this.lastKilledAtDrainTimeout = worker.info();
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
      requestedTarget: this.current?.requested ?? '',
      forks: this.config.forks,
      operation: this.stopping ? 'die' : (this.lock.current ?? ''),
      masterPid: process.pid,
      masterStartedAt: this.startedAt,
      restarts: this.reconciler.restarts,
      sequence: this.pool.lastSequence,
      readyMode: this.current?.readyMode ?? this.config.readyMode,
      respawnsPending: this.reconciler.pending,
      spares: this.launcher.spares?.() ?? 0,
      ...(this.reconciler.lastCrash && { lastCrash: this.reconciler.lastCrash }),
      killedAtDrainTimeout: this.killedAtDrainTimeout,
      ...(this.lastKilledAtDrainTimeout && { lastKilledAtDrainTimeout: this.lastKilledAtDrainTimeout }),
      ...(this.lastUpgrade && { lastUpgrade: this.lastUpgrade }),
      previousTarget: this.previous?.target ?? '',
      previousGeneration: this.previous?.generation ?? 0,
      ...(this.operationOrigin && { operationOrigin: this.operationOrigin }),
      following: this.config.follow ?? '',
      nodeVersion: process.version,
      ...this.lineage,
    };
  }

  /** Fork the pool on a target; only when no worker is running. */
  async start(target: string, options: StartOptions = {}): Promise<StartResult> {
    const file = resolveTarget(target);
    if (options.forks !== undefined) checkForks(options.forks);
    checkCallDurations({ readyTimeoutMs: options.readyTimeoutMs });
    return this.exclusive('start', options.origin ?? 'api', async (signal) => {
      const live = this.pool.live();
      if (live.length > 0) {
        throw failedPrecondition(
          `${live.length} worker(s) already run ${live[0]!.spec.target}; use Upgrade to change the code`,
        );
      }
      const forks = options.forks ?? this.config.forks;
      const continues = options.continues;
      if (continues) this.lastGeneration = Math.max(this.lastGeneration, continues.generation - 1);
      const node = continues?.execPath ? { execPath: continues.execPath, version: continues.nodeVersion } : undefined;
      const spec = this.nextRelease(file, continues?.requested ?? target, options.readyMode, node);
      const readyTimeoutMs = options.readyTimeoutMs || this.config.readyTimeoutMs;
      const { workers, failure } = await this.forkAll(spec, forks, readyTimeoutMs, signal);
      if (failure) {
        // Nothing stays behind: Start can simply be called again.
        await Promise.all(workers.map((w) => this.pool.kill(w)));
        throw groupFailure('start failed', failure);
      }
      this.config.forks = forks;
      this.current = spec;
      this.log.info(`generation ${spec.generation} serving ${spec.target} on ${forks} worker(s)`);
      if (this.config.follow && !this.follower) this.follower = new Follower(this, this.config.follow, this.log);
      return { generation: spec.generation, workers: workers.map((w) => w.info()) };
    });
  }

  /** Rolling upgrade to a new target (see upgrade.ts). */
  async upgrade(target: string, options: UpgradeOptions = {}): Promise<UpgradeResult> {
    const file = resolveTarget(target);
    checkCallDurations({ readyTimeoutMs: options.readyTimeoutMs, drainTimeoutMs: options.drainTimeoutMs });
    const origin = options.origin ?? 'api';
    return this.exclusive('upgrade', origin, async (signal) => {
      const startedAt = new Date();
      const attempt = { generation: 0 };
      const from = this.current;
      // Checked under the lock: a refused call must not wait for a probe first.
      const node = options.node ? await cancellable(probeNode(options.node), signal) : undefined;
      const outcome = await this.attemptUpgrade(file, target, { ...options, node }, signal, attempt);
      // A finished upgrade reports the duration its reply carries, so the two never differ.
      const durationMs = Date.now() - startedAt.getTime();
      const reason = outcome.kind === 'ok' ? '' : ((outcome.error as Error)?.message ?? String(outcome.error));
      this.lastUpgrade = { origin, outcome: outcome.kind, target: file, requestedTarget: target, generation: attempt.generation, reason, startedAt, durationMs };
      this.emit('upgrade', this.lastUpgrade);
      if (outcome.kind !== 'ok') throw outcome.error;
      this.log.info(`upgrade to generation ${outcome.release.generation} (asked by ${origin}) done in ${durationMs} ms`);
      return {
        generation: outcome.release.generation,
        target: outcome.release.target,
        workers: outcome.workers.map((w) => w.info()),
        durationMs,
        killedAtDrainTimeout: outcome.killedAtDrainTimeout,
        previousTarget: from?.target ?? '',
        previousGeneration: from?.generation ?? 0,
      };
    });
  }

  /** The hook, then the rolling upgrade: every way they can end is an outcome, not a throw. */
  private async attemptUpgrade(
    file: string,
    requested: string,
    options: Omit<UpgradeOptions, 'node'> & { node: NodeBinary | undefined },
    signal: AbortSignal,
    attempt: { generation: number },
  ): Promise<UpgradeOutcome> {
    // On a master that has run nothing yet this is a start, one worker at a time.
    const from = this.current;
    try {
      if (this.config.preUpgrade) {
        const verdict = await this.askHook(file, from, options.hookData, signal);
        if (!verdict.allowed) return { kind: 'vetoed', error: failedPrecondition(verdict.reason, verdict.stderrTail) };
      }
      const to = this.nextRelease(file, requested, options.readyMode ?? from?.readyMode, options.node);
      attempt.generation = to.generation;
      this.log.info(`upgrade to generation ${to.generation} (${to.target}) begins, asked by ${options.origin ?? 'api'}`);
      return await rollingUpgrade({
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
          this.previous = from;
          this.current = to;
          // Crashed new workers are respawned while the old ones drain.
          this.reconciler.allowRespawns();
        },
      });
    } catch (error) {
      return error instanceof Cancelled ? { kind: 'aborted', error } : { kind: 'failed', error };
    }
  }

  /**
   * Replace this master's process (docs/self-upgrade.md): a successor takes
   * the sockets and serves with a full pool, then this master drains its
   * workers and stops. Any failure before the successor serves leaves this
   * master as it was, and says why.
   */
  async upgradeMaster(options: UpgradeMasterOptions = {}): Promise<UpgradeMasterResult> {
    checkCallDurations({ readyTimeoutMs: options.readyTimeoutMs, drainTimeoutMs: options.drainTimeoutMs });
    const starter = this.successorStarter;
    if (!starter) {
      throw failedPrecondition('only a master started by the liveswap CLI (liveswap -s) can replace its own process; this one is embedded in an application');
    }
    const result = await this.exclusive('upgrade-master', 'api', async (signal) => {
      const startedAt = Date.now();
      const node = options.node ? await cancellable(probeNode(options.node), signal) : OWN_NODE;
      const current = this.current;
      this.log.info(`upgrade-master: starting a successor on ${node.execPath} (Node ${node.version})`);
      const successor = await starter({
        node,
        release: current && {
          target: current.target,
          requested: current.requested,
          generation: current.generation,
          readyMode: current.readyMode,
          ...(current.execPath !== undefined && { execPath: current.execPath }),
          nodeVersion: current.nodeVersion,
        },
        forks: this.config.forks,
        timeoutMs: options.readyTimeoutMs || this.config.readyTimeoutMs + SUCCESSOR_GRACE_MS,
        signal,
      });
      this.handedOver = true;
      return { oldMasterPid: process.pid, newMasterPid: successor.pid, nodeVersion: successor.nodeVersion, durationMs: Date.now() - startedAt };
    });
    this.log.info(`upgrade-master: master pid ${result.newMasterPid} (Node ${result.nodeVersion}) serves; draining this master's workers`);
    void this.die(options.drainTimeoutMs ? { drainTimeoutMs: options.drainTimeoutMs } : {});
    return result;
  }

  /** SIGKILL every worker, then fork a fresh pool on the current target. */
  kill(origin: Origin = 'api'): Promise<KillResult> {
    return this.exclusive('kill', origin, async (signal) => {
      const spec = this.current;
      if (!spec) throw failedPrecondition('nothing has been started yet: use Start or Upgrade (liveswap -u FILE) first');
      const victims = this.pool.list();
      await cancellable(Promise.all(victims.map((w) => this.pool.kill(w))), signal);
      const { workers, failure } = await this.forkAll(spec, this.config.forks, this.config.readyTimeoutMs, signal);
      // The reconciler forks whatever is missing once the operation has ended, with the crash backoff.
      if (failure) throw groupFailure(`killed ${victims.length} worker(s) but the respawn failed`, failure);
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
    this.follower?.stop();
    this.reconciler.stop();
    if (this.lock.current) {
      this.log.warn(`cancelling the ${this.lock.current} in progress: the master is shutting down`);
      await this.lock.cancel();
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

  /**
   * Runs an operation under the lock. The reconciler stands back while it
   * runs and brings the pool back to full size once it has ended.
   */
  private async exclusive<T>(name: OperationName, origin: Origin, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.stopping) throw unavailable('the master is shutting down');
    let ran = false;
    try {
      return await this.lock.run(name, async (signal) => {
        ran = true;
        this.operationOrigin = origin;
        this.reconciler.pause();
        try {
          return await run(signal);
        } catch (error) {
          if (error instanceof LiveswapError) this.log.warn(error.message);
          throw error;
        } finally {
          this.operationOrigin = undefined;
          this.reconciler.resume();
          // The operation's boots are over: boot the spares the next one will use now,
          // rather than a while after the last launch.
          if (!this.stopping) this.launcher.prepareSpares?.();
        }
      });
    } finally {
      // Once the lock is free: whoever waits for it (the follower) may go now.
      if (ran && !this.stopping) this.emit('idle');
    }
  }

  /**
   * Forks `count` workers of a release and waits until all are ready, or
   * until the first fails; a fork the OS refuses ends the forking at once.
   */
  private async forkAll(
    spec: LaunchSpec,
    count: number,
    readyTimeoutMs: number,
    signal: AbortSignal,
  ): Promise<{ workers: WorkerHandle[]; failure?: WorkerHandle | ForkFailed }> {
    const workers: WorkerHandle[] = [];
    try {
      while (workers.length < count) workers.push(this.pool.spawn(spec, { readyTimeoutMs }));
    } catch (error) {
      if (!(error instanceof ForkFailed)) throw error;
      return { workers, failure: error };
    }
    const failed = await cancellable(allReadyOrFirstFailure(workers), signal);
    return failed ? { workers, failure: failed } : { workers };
  }

  private nextRelease(target: string, requested: string, readyMode: ReadyMode | undefined, node?: NodeBinary): Release {
    return {
      target,
      requested,
      generation: ++this.lastGeneration,
      readyMode: readyMode ?? this.config.readyMode,
      ...(node && node.execPath !== process.execPath ? { execPath: node.execPath } : {}),
      nodeVersion: node?.version ?? process.version,
    };
  }

  private async askHook(
    target: string,
    from: LaunchSpec | undefined,
    extra: unknown,
    signal: AbortSignal,
  ): Promise<HookVerdict> {
    const data = {
      target,
      previousTarget: from?.target ?? '',
      generation: this.lastGeneration + 1,
      workers: this.pool.list().map((w) => ({ id: w.id, pid: w.pid, state: w.state, generation: w.generation })),
      extra: extra ?? null,
    };
    return cancellable(
      runPreUpgradeHook(this.config.preUpgrade!, data, {
        timeoutMs: this.config.hookTimeoutMs,
        onOutput: (line) => this.log.info(`[pre-upgrade hook] ${line}`),
        signal,
      }),
      signal,
    );
  }
}

/**
 * Why workers forked together did not all become ready, for the caller: a
 * fork the OS refused, or a worker that failed (with its stderr tail).
 */
function groupFailure(prefix: string, failure: WorkerHandle | ForkFailed): LiveswapError {
  if (failure instanceof ForkFailed) return new LiveswapError(forkStatus(failure.osError), `${prefix}: ${failure.message}`);
  const message = `${prefix}: worker ${failure.id} ${failure.reason}`;
  if (failure.forkError) return new LiveswapError(forkStatus(failure.forkError), message);
  return failedPrecondition(message, failure.stderrTail);
}

/** Out of memory, processes or file descriptors. */
const RESOURCE_SHORTAGES = new Set(['EAGAIN', 'ENOMEM', 'EMFILE', 'ENFILE']);

/** RESOURCE_EXHAUSTED when the OS ran short of something (the same request may work later). */
function forkStatus(error: NodeJS.ErrnoException): Status {
  return RESOURCE_SHORTAGES.has(error.code ?? '') ? Status.RESOURCE_EXHAUSTED : Status.FAILED_PRECONDITION;
}
