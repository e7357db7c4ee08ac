/**
 * The programmatic API.
 *
 *   import liveswap from 'liveswap';
 *   const ls = await liveswap('./app.js');          // master in this process, 2 workers, control on 127.0.0.1:3000
 *   await ls.upgrade('./app-v2.js');
 *   for await (const event of ls.events()) { … }
 *   await ls.die();
 *
 *   import { connect } from 'liveswap';
 *   const client = connect({ port: 3000 });         // typed gRPC client of any master
 */
import { on } from 'node:events';
import type {
  BroadcastResult,
  DieOptions,
  DieResult,
  KillResult,
  Master,
  MasterStatus,
  UpgradeOptions,
  UpgradeResult,
} from './supervisor/master.js';
import type { PoolTransition } from './supervisor/pool.js';
import { fromHere, masterOptions, type LiveswapOptions } from './options.js';

export { connect, endpointOf, LiveswapClientError } from './client/index.js';
/** Fleet rollouts: one Upgrade across many masters, canary first, rolled back at the first failure. */
export { fleetStatus, rollout } from './fleet/rollout.js';
export type { FleetOptions, HostEvent, HostResult, HostState, HostStatus, RolloutOptions, RolloutResult } from './fleet/rollout.js';
export type { FleetHost } from './fleet/hosts.js';
/** The generated wire types and enums (WorkerState, ReadyMode, …), for connect() users. */
export * as proto from './gen/liveswap/v1/liveswap.js';
export type { ConnectOptions, LiveswapClient, TlsClientOptions, WatchOptions } from './client/index.js';
export { LiveswapError } from './common/errors.js';
export { DEFAULTS, MAX_FORKS } from './common/defaults.js';
export type { Cutover, ReadyMode } from './common/config.js';
export type { LiveswapOptions } from './options.js';
export type { WorkerInfo, WorkerStateName } from './supervisor/worker-handle.js';
export type { WorkerCounts } from './supervisor/pool.js';
export type {
  BroadcastResult,
  DieOptions,
  DieResult,
  KillResult,
  MasterStatus,
  UpgradeOptions,
  UpgradeResult,
} from './supervisor/master.js';

/** A worker state transition, as emitted by `events()` and the `transition` event. */
export type WorkerEvent = PoolTransition;

export interface Liveswap {
  /** Where the control service listens ("127.0.0.1:3000", "unix:/path"), or undefined with control: false. */
  readonly endpoint: string | undefined;
  /** The metrics scrape URL ("http://127.0.0.1:9464/metrics"), or undefined without metricsPort. */
  readonly metricsUrl: string | undefined;
  /** Where the health probes are served ("0.0.0.0:8080"), or undefined without healthPort. */
  readonly healthEndpoint: string | undefined;
  /** The file holding the TCP control token (mode 0600), or undefined on a unix socket or with control: false. */
  readonly tokenFile: string | undefined;
  /** The master itself: an EventEmitter of `transition` and `output` events. */
  readonly master: Master;
  /** Resolves once the master has stopped (after die()). */
  readonly stopped: Promise<void>;
  upgrade(target: string, options?: UpgradeOptions): Promise<UpgradeResult>;
  kill(): Promise<KillResult>;
  broadcast(message: unknown): Promise<BroadcastResult>;
  status(): MasterStatus;
  /** Every worker transition from now on, until the master stops or the loop breaks. */
  events(options?: { signal?: AbortSignal }): AsyncGenerator<WorkerEvent, void, undefined>;
  /** Stop every worker and the control service. */
  die(options?: DieOptions): Promise<DieResult>;
  /** die() with the defaults, resolving once everything has stopped. */
  close(): Promise<void>;
}

export default async function liveswap(targetOrOptions: string | LiveswapOptions): Promise<Liveswap> {
  const options = typeof targetOrOptions === 'string' ? { target: targetOrOptions } : targetOrOptions;
  // The master is loaded on the first call: `import { connect } from 'liveswap'` never loads it.
  const { runMaster } = await import('./run.js');
  const running = await runMaster(masterOptions(options));
  const { master } = running;

  return {
    endpoint: running.control?.target,
    metricsUrl: running.metrics?.url,
    healthEndpoint: running.health?.endpoint,
    tokenFile: running.control?.tokenFile,
    master,
    stopped: running.stopped,
    upgrade: (target, upgradeOptions) =>
      master.upgrade(fromHere(target), upgradeOptions?.node ? { ...upgradeOptions, node: fromHere(upgradeOptions.node) } : upgradeOptions),
    kill: () => master.kill(),
    broadcast: (message) => master.broadcast(message),
    status: () => master.status(),
    async *events({ signal } = {}) {
      if (master.isStopping) return;
      const stop = new AbortController();
      const onStopped = () => stop.abort();
      master.once('stopped', onStopped);
      signal?.addEventListener('abort', onStopped, { once: true });
      try {
        for await (const [event] of on(master, 'transition', { signal: stop.signal })) yield event as WorkerEvent;
      } catch (error) {
        if ((error as Error).name !== 'AbortError') throw error;
      } finally {
        master.off('stopped', onStopped);
        signal?.removeEventListener('abort', onStopped);
      }
    },
    async die(dieOptions) {
      const result = await master.die(dieOptions);
      await running.stopped;
      return result;
    },
    async close() {
      await master.die();
      await running.stopped;
    },
  };
}

export { liveswap };
