/**
 * Keeps the pool at full size between operations: a worker of the current
 * release that exits without being asked to is respawned after a backoff that
 * doubles with each crash in a row of that slot (capped), and resets once a
 * worker has stayed ready for backoffResetMs. A fork the OS refuses (ENOMEM,
 * EAGAIN…) counts as one more failure of its slot and is tried again after
 * the next backoff. After an operation it refills the pool at once, and
 * drains workers of another release left over from a rollback that could not
 * restore the old one.
 *
 * It acts only when the master lets it:
 *
 *   idle ──pause()──> paused ──allowRespawns()──> respawning
 *    ▲                  │                            │
 *    └────resume()──────┴────────resume()────────────┘        stop() from any: stopped
 *
 *   - idle: no operation runs; crashes are respawned, strays retired.
 *   - paused: an operation owns the pool and accounts for crashes itself;
 *     pending respawns are cancelled.
 *   - respawning: the operation lets crashed workers of the current release
 *     be respawned (an upgrade that has committed, waiting for old workers
 *     to drain), but strays are its business.
 *   - stopped: Die; nothing is spawned any more.
 */
import type { MasterConfig } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import type { LaunchSpec } from './launcher.js';
import type { Pool, SpawnOptions } from './pool.js';
import { allReadyOrFirstFailure } from './readiness.js';
import type { WorkerHandle, WorkerInfo } from './worker-handle.js';

type Mode = 'idle' | 'paused' | 'respawning' | 'stopped';

export class Reconciler {
  private mode: Mode = 'idle';
  private readonly timers = new Set<NodeJS.Timeout>();
  private respawned = 0;
  private crash: WorkerInfo | undefined;

  constructor(
    private readonly pool: Pool,
    /** Read live: Start changes forks. */
    private readonly config: MasterConfig,
    private readonly log: Logger,
    /** The release the pool should run, if any. */
    private readonly currentRelease: () => LaunchSpec | undefined,
  ) {
    pool.on('exit', (worker, info) => {
      if (info.expected) return;
      this.crash = worker.info();
      this.onCrash(worker);
    });
  }

  /** Crashed workers respawned so far (forked, that is). */
  get restarts(): number {
    return this.respawned;
  }

  /** Crashed workers waiting out their backoff. */
  get pending(): number {
    return this.timers.size;
  }

  /** The most recent worker that exited without being asked to, as it was when it exited. */
  get lastCrash(): WorkerInfo | undefined {
    return this.crash;
  }

  /** An operation begins: it owns the pool, and pending respawns are cancelled. */
  pause(): void {
    if (this.mode === 'stopped') return;
    this.mode = 'paused';
    this.cancelTimers();
  }

  /** The running operation lets crashed workers of the current release be respawned. */
  allowRespawns(): void {
    if (this.mode === 'paused') this.mode = 'respawning';
  }

  /** The operation has ended: bring the current release back to full size at once. */
  resume(): void {
    if (this.mode === 'stopped') return;
    this.mode = 'idle';
    this.refill();
  }

  /** Die: cancel pending respawns and spawn nothing any more. */
  stop(): void {
    this.mode = 'stopped';
    this.cancelTimers();
  }

  private cancelTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private get respawnsAllowed(): boolean {
    return this.mode === 'idle' || this.mode === 'respawning';
  }

  private liveOfCurrent(): number {
    const spec = this.currentRelease();
    return spec ? this.pool.live(spec.generation).length : 0;
  }

  private refill(): void {
    const spec = this.currentRelease();
    if (!spec) return;
    const missing = this.config.forks - this.liveOfCurrent() - this.timers.size;
    for (let i = 0; i < missing; i++) this.spawn(spec, { readyTimeoutMs: this.config.readyTimeoutMs });
    void this.retireStrays(spec);
  }

  /**
   * Forks a worker; true if it did. A fork the OS refuses is logged and tried
   * again after the slot's next backoff, never thrown: here no caller could
   * handle it, and a throw from a timer would take the master and every
   * worker down with it.
   */
  private spawn(spec: LaunchSpec, options: SpawnOptions): boolean {
    try {
      this.pool.spawn(spec, options);
      return true;
    } catch (error) {
      const streak = (options.crashStreak ?? 0) + 1;
      const delayMs = this.backoffMs(streak);
      this.log.error(`${(error as Error).message} (generation ${spec.generation}); trying again in ${delayMs} ms`);
      this.respawnLater(spec, delayMs, { ...options, crashStreak: streak });
      return false;
    }
  }

  private backoffMs(streak: number): number {
    return Math.min(this.config.backoffInitialMs * 2 ** (streak - 1), this.config.backoffMaxMs);
  }

  /** Forks a worker after `delayMs`, if respawns are still allowed then and the release is still current and short. */
  private respawnLater(spec: LaunchSpec, delayMs: number, options: SpawnOptions): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.respawnsAllowed || this.currentRelease() !== spec) return;
      if (this.liveOfCurrent() >= this.config.forks) return;
      if (this.spawn(spec, options) && (options.restarts ?? 0) > 0) this.respawned++;
      void this.retireStrays(spec);
    }, delayMs);
    this.timers.add(timer);
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
    if (failed || this.mode !== 'idle' || this.currentRelease() !== spec) return;
    if (this.pool.ready(spec.generation).length < this.config.forks) return;
    for (const stray of this.pool.liveExcept(spec.generation)) {
      void this.pool.drain(stray, this.config.drainTimeoutMs, `generation ${spec.generation} is back at full strength`);
    }
  }

  /**
   * A worker exited without being asked to. Respawn it after the backoff of
   * its slot, if respawns are allowed now and it ran the current release.
   * (While an operation holds the pool, the operation accounts for it and
   * resume() follows.)
   */
  private onCrash(worker: WorkerHandle): void {
    const spec = this.currentRelease();
    if (!this.respawnsAllowed || !spec || worker.generation !== spec.generation) return;
    const stayedReadyLongEnough =
      worker.readyAt !== undefined && Date.now() - worker.readyAt.getTime() >= this.config.backoffResetMs;
    const streak = stayedReadyLongEnough ? 1 : worker.crashStreak + 1;
    const delayMs = this.backoffMs(streak);
    this.log.warn(`worker ${worker.id} ${worker.reason}; respawning in ${delayMs} ms (crash ${streak} in a row)`);
    this.respawnLater(spec, delayMs, {
      readyTimeoutMs: this.config.readyTimeoutMs,
      restarts: worker.restarts + 1,
      crashStreak: streak,
    });
  }
}
