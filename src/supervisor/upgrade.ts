/**
 * The rolling upgrade.
 *
 * Invariant: while an upgrade runs, no fewer workers are ready than the pool
 * size N (unless old ones crash on their own): an old worker is drained only
 * after a replacement has become ready. Up to `maxSurge` new workers boot at
 * once, so at most N + maxSurge are live. Booting more processes at once than
 * there are cores does not make them ready sooner, it only takes CPU from the
 * workers serving traffic, so the default surge is min(N, cores).
 *
 * Cutover (when the old version stops taking new connections):
 *   - 'ready' (default): each old worker is drained the moment a new one is
 *     ready, so traffic moves to the new version as fast as it can boot.
 *     Every new worker must then stay up for the stability window before the
 *     upgrade counts as done; a crash inside it rolls back (the old release
 *     is re-forked while the surviving new workers keep serving).
 *   - 'stable': the last old worker keeps serving until every new worker has
 *     passed the stability window. Costs stableMs of mixed versions, but a
 *     release that crashes right after it is ready never leaves the port with
 *     nobody behind it, even with one worker.
 *
 * Every wait has exactly these outcomes:
 *   - a new worker is ready                   → drain one old worker, go on
 *   - a new worker exited (boot failure, ready
 *     timeout, crash inside the stable window) → roll back
 *   - the operation was cancelled (Die)        → stop here; Die stops everyone
 * and a new worker the OS refuses to fork (ENOMEM…) rolls back too.
 *
 * Rolling back restores the old generation to N live workers *before* the new
 * ones are drained, so some version always serves.
 *
 * The whole upgrade (the pre-upgrade hook, then this) ends in exactly one
 * UpgradeOutcome, decided where it happens: ok and rolled_back here, vetoed
 * by the hook's verdict, aborted when a wait is cancelled (Die), failed when
 * anything else is thrown (a bug).
 */
import type { Cutover } from '../common/config.js';
import { failedPrecondition, type LiveswapError } from '../common/errors.js';
import type { LaunchSpec } from './launcher.js';
import type { Logger } from '../common/logger.js';
import { ForkFailed, type Pool } from './pool.js';
import { allReadyOrFirstFailure } from './readiness.js';
import { cancellable, delay, type Cancelled } from './wait.js';
import type { ExitInfo, WorkerHandle } from './worker-handle.js';


export interface UpgradePlan {
  pool: Pool;
  forks: number;
  /** The release serving now; undefined on a master that has run nothing yet. */
  from: LaunchSpec | undefined;
  to: LaunchSpec;
  readyTimeoutMs: number;
  drainTimeoutMs: number;
  stableMs: number;
  /** New workers booting at once (clamped to 1..forks). */
  maxSurge: number;
  cutover: Cutover;
  signal: AbortSignal;
  log: Logger;
  /** Called once the new workers are confirmed, before the old ones have finished draining. */
  commit(): void;
}

/** How an upgrade that got to run ended (one refused before it began, e.g. another operation running, has none). */
export type UpgradeOutcome =
  | { kind: 'ok'; release: LaunchSpec; workers: WorkerHandle[]; killedAtDrainTimeout: number }
  /** The new release failed; the old one serves again (or, if it could not be restored, what new workers were ready). */
  | { kind: 'rolled_back'; error: LiveswapError }
  /** The pre-upgrade hook said no; nothing changed. */
  | { kind: 'vetoed'; error: LiveswapError }
  /** Die cancelled it; Die stops everyone. */
  | { kind: 'aborted'; error: Cancelled }
  | { kind: 'failed'; error: unknown };

export type UpgradeOutcomeName = UpgradeOutcome['kind'];

/** The rolling part ends ok or rolled back; a cancelled wait throws Cancelled out of it. */
export type RollingOutcome = Extract<UpgradeOutcome, { kind: 'ok' | 'rolled_back' }>;

export async function rollingUpgrade(plan: UpgradePlan): Promise<RollingOutcome> {
  const { pool, to, signal } = plan;
  const expectAddresses = plan.from ? sharedAddresses(pool.ready(plan.from.generation)) : [];
  const surge = Math.max(1, Math.min(plan.forks, Math.floor(plan.maxSurge)));
  const fresh: WorkerHandle[] = [];
  const retiring: { worker: WorkerHandle; exit: Promise<ExitInfo> }[] = [];
  const newCrash = firstUnexpectedExit(pool, to.generation);
  const retire = (old: WorkerHandle) =>
    retiring.push({
      worker: old,
      exit: pool.drain(old, plan.drainTimeoutMs, `replaced by generation ${to.generation}`),
    });

  try {
    let readyCount = 0;
    while (readyCount < plan.forks) {
      try {
        while (fresh.length < plan.forks && fresh.length - readyCount < surge) {
          fresh.push(pool.spawn(to, { readyTimeoutMs: plan.readyTimeoutMs, expectAddresses }));
        }
      } catch (error) {
        if (!(error instanceof ForkFailed)) throw error;
        return await rollBack(plan, fresh, { reason: error.message, stderrTail: [] }, expectAddresses);
      }
      const booting = fresh.filter((w) => w.state === 'starting');
      const outcome = await cancellable(
        Promise.race([...booting.map((w) => w.readyOrExited.then((ready) => (ready ? 'ready' : w))), newCrash.exited]),
        signal,
      );
      if (outcome !== 'ready') return await rollBack(plan, fresh, failureOf(outcome), expectAddresses);
      // Several may have become ready together; count them all.
      const nowReady = fresh.filter((w) => w.state === 'ready').length;
      for (; readyCount < nowReady; readyCount++) {
        const isLastOld = readyCount === plan.forks - 1;
        if (isLastOld && plan.cutover === 'stable') continue;
        const old = oldestOther(pool, to.generation);
        if (old) retire(old);
      }
    }
    // With cutover 'ready' the old version has stopped taking connections by
    // now; anything left over (extra old workers from a rollback that could
    // not restore) goes too.
    if (plan.cutover === 'ready') for (const old of pool.liveExcept(to.generation)) retire(old);

    // Every new worker must stay up stableMs after becoming ready.
    const lastReady = Math.max(...fresh.map((w) => w.readyAt?.getTime() ?? Date.now()));
    const outcome = await cancellable(
      Promise.race([delay(lastReady + plan.stableMs - Date.now()).then(() => 'stable' as const), newCrash.exited]),
      signal,
    );
    if (outcome !== 'stable') return await rollBack(plan, fresh, failureOf(outcome), expectAddresses);
    plan.commit();
    for (const old of pool.liveExcept(to.generation)) retire(old);

    await cancellable(Promise.all(retiring.map((r) => r.exit)), signal);
    return {
      kind: 'ok',
      release: to,
      workers: fresh.filter((w) => w.isLive),
      killedAtDrainTimeout: retiring.filter((r) => r.worker.killedAtDrainTimeout).length,
    };
  } finally {
    newCrash.dispose();
  }
}

/**
 * The addresses every one of these workers listens on. A new worker must
 * listen on all of them before it replaces one: an app that opens a second
 * port a moment after its first would otherwise leave that port with no
 * worker behind it while the old ones drain. Addresses only some workers
 * listen on (a per-worker debug port) are not required.
 */
function sharedAddresses(workers: readonly WorkerHandle[]): string[] {
  if (workers.length === 0) return [];
  return [...workers[0]!.listening].filter((address) => workers.every((w) => w.listening.has(address)));
}

/** The oldest live worker not of `generation`, ready ones first. */
function oldestOther(pool: Pool, generation: number): WorkerHandle | undefined {
  const others = pool.liveExcept(generation);
  return others.find((w) => w.state === 'ready') ?? others[0];
}

/** Resolves with the first worker of `generation` that exits without being asked to. */
function firstUnexpectedExit(pool: Pool, generation: number) {
  let onExit!: (worker: WorkerHandle, info: ExitInfo) => void;
  const exited = new Promise<WorkerHandle>((resolve) => {
    onExit = (worker, info) => {
      if (worker.generation === generation && !info.expected) resolve(worker);
    };
    pool.on('exit', onExit);
  });
  return { exited, dispose: () => pool.off('exit', onExit) };
}

/** Why an upgrade rolls back, for its caller. */
interface Failure {
  reason: string;
  stderrTail: readonly string[];
}

/** A new worker that exited: how, and when. */
function failureOf(culprit: WorkerHandle): Failure {
  const uptime = culprit.readyAt && ` (${Date.now() - culprit.readyAt.getTime()} ms after it became ready)`;
  return { reason: `worker ${culprit.id} ${culprit.reason}${uptime ?? ''}`, stderrTail: culprit.stderrTail };
}

async function rollBack(
  plan: UpgradePlan,
  fresh: WorkerHandle[],
  failure: Failure,
  oldAddresses: readonly string[],
): Promise<RollingOutcome> {
  const { pool, from, to, log } = plan;
  let reason = failure.reason;
  log.warn(`upgrade to generation ${to.generation} failed: ${reason}; rolling back`);

  // New workers still starting serve nothing: stop them now.
  for (const worker of fresh) if (worker.state === 'starting') void pool.kill(worker);

  const failedAgain = from && (await restore(plan, from, oldAddresses));
  if (failedAgain) {
    // Rather than leave nothing serving, the ready new workers stay; the
    // master retires them once the old release is back at full strength.
    reason += `; restoring generation ${from.generation} failed too: ${failedAgain}`;
    log.error(`rollback could not restore generation ${from.generation}; keeping whatever new workers are ready`);
  } else {
    const why = from ? `rolled back to generation ${from.generation}` : 'upgrade rolled back';
    await cancellable(Promise.all(fresh.map((w) => pool.drain(w, plan.drainTimeoutMs, why))), plan.signal);
  }
  return { kind: 'rolled_back', error: failedPrecondition(`upgrade rolled back: ${reason}`, failure.stderrTail) };
}

/**
 * Brings the old release back to N live workers, each listening on the
 * addresses the old release served when the upgrade began (by now its workers
 * may all be draining, and could not tell). Resolves undefined, or why it
 * failed: the first worker that did, or a fork the OS refused.
 */
async function restore(plan: UpgradePlan, from: LaunchSpec, expectAddresses: readonly string[]): Promise<string | undefined> {
  const oldLive = plan.pool.live(from.generation);
  const replacements: WorkerHandle[] = [];
  try {
    while (oldLive.length + replacements.length < plan.forks) {
      replacements.push(plan.pool.spawn(from, { readyTimeoutMs: plan.readyTimeoutMs, expectAddresses }));
    }
  } catch (error) {
    if (!(error instanceof ForkFailed)) throw error;
    return error.message;
  }
  const failed = await cancellable(allReadyOrFirstFailure([...oldLive, ...replacements]), plan.signal);
  return failed && `worker ${failed.id} ${failed.reason}`;
}
