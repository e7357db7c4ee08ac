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
import path from 'node:path';
import { DEFAULTS } from './common/defaults.js';
import type { Cutover, ReadyMode } from './common/config.js';
import type { LogFormat } from './common/logger.js';
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
import { runMaster } from './run.js';

export { connect, endpointOf, LiveswapClientError } from './client/index.js';
/** The generated wire types and enums (WorkerState, ReadyMode, …), for connect() users. */
export * as proto from './gen/liveswap/v1/liveswap.js';
export type { ConnectOptions, LiveswapClient, TlsClientOptions } from './client/index.js';
export { LiveswapError } from './common/errors.js';
export { DEFAULTS, MAX_FORKS } from './common/defaults.js';
export type { Cutover, ReadyMode } from './common/config.js';
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

export interface LiveswapOptions {
  /** The module every worker runs (relative paths resolve against process.cwd()). */
  target: string;
  /** Number of workers (default 2). */
  forks?: number;
  /** Control service port (default 3000; 0 picks a free port). */
  port?: number;
  /** Control service address (default 127.0.0.1). */
  address?: string;
  /** Serve the control service on this unix socket (mode 0600) instead of TCP. */
  socket?: string;
  /** false: no control service at all, this handle is the only way in. */
  control?: boolean;
  /** TLS for TCP control: PEM file paths; with `ca`, clients must present a certificate it signed (mTLS). */
  tls?: { cert: string; key: string; ca?: string };
  /** Allow a non-loopback `address` without TLS. */
  insecure?: boolean;
  /** Where the TCP control token file goes (default: $LIVESWAP_STATE_DIR, $XDG_RUNTIME_DIR/liveswap, ~/.liveswap). */
  stateDir?: string;
  /** Module that may veto upgrades: `function (data, cb)` or an async function. */
  preUpgrade?: string;
  readyMode?: ReadyMode;
  readyTimeoutMs?: number;
  drainTimeoutMs?: number;
  /** How long a new worker must stay up after ready before an upgrade counts it good (default 500). */
  stableMs?: number;
  /** New workers an upgrade boots at once (default: min(forks, CPU cores)). */
  maxSurge?: number;
  /** Processes kept booted ahead of time so new workers skip Node's start-up (default: as many as maxSurge; 0: none). */
  spares?: number;
  /** 'ready' (default): drain each old worker as soon as a new one is ready; 'stable': keep the last one until the new release passed the stability window. */
  cutover?: Cutover;
  hookTimeoutMs?: number;
  logLevel?: 'error' | 'warn' | 'info' | 'debug' | 'silent';
  logFormat?: LogFormat;
  /** Worker stdout/stderr: copied to this process's with a prefix (default), or dropped. */
  workerOutput?: 'prefix' | 'ignore';
  /** Serve Prometheus metrics over HTTP at /metrics on this port (0 picks a free one); none by default. Unauthenticated. */
  metricsPort?: number;
  /** With metricsPort: the address to serve metrics on (default 127.0.0.1). */
  metricsAddress?: string;
}

export interface Liveswap {
  /** Where the control service listens ("127.0.0.1:3000", "unix:/path"), or undefined with control: false. */
  readonly endpoint: string | undefined;
  /** The metrics scrape URL ("http://127.0.0.1:9464/metrics"), or undefined without metricsPort. */
  readonly metricsUrl: string | undefined;
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

const fromHere = (file: string) => path.resolve(process.cwd(), file);

export default async function liveswap(targetOrOptions: string | LiveswapOptions): Promise<Liveswap> {
  const options = typeof targetOrOptions === 'string' ? { target: targetOrOptions } : targetOrOptions;
  const running = await runMaster({
    target: fromHere(options.target),
    control:
      options.control === false
        ? false
        : options.socket
          ? { socket: options.socket }
          : { address: options.address ?? DEFAULTS.address, port: options.port ?? DEFAULTS.port },
    security: {
      ...(options.tls && {
        tls: { cert: fromHere(options.tls.cert), key: fromHere(options.tls.key), ...(options.tls.ca && { ca: fromHere(options.tls.ca) }) },
      }),
      ...(options.insecure && { insecure: true }),
      ...(options.stateDir !== undefined && { stateDir: fromHere(options.stateDir) }),
    },
    ...(options.forks !== undefined && { forks: options.forks }),
    ...(options.preUpgrade !== undefined && { preUpgrade: fromHere(options.preUpgrade) }),
    ...(options.readyMode !== undefined && { readyMode: options.readyMode }),
    ...(options.readyTimeoutMs !== undefined && { readyTimeoutMs: options.readyTimeoutMs }),
    ...(options.drainTimeoutMs !== undefined && { drainTimeoutMs: options.drainTimeoutMs }),
    ...(options.stableMs !== undefined && { stableMs: options.stableMs }),
    ...(options.maxSurge !== undefined && { maxSurge: options.maxSurge }),
    ...(options.spares !== undefined && { spares: options.spares }),
    ...(options.cutover !== undefined && { cutover: options.cutover }),
    ...(options.hookTimeoutMs !== undefined && { hookTimeoutMs: options.hookTimeoutMs }),
    log: { level: options.logLevel, format: options.logFormat },
    workerOutput: options.workerOutput ?? 'prefix',
    ...(options.metricsPort !== undefined && {
      metrics: { address: options.metricsAddress ?? DEFAULTS.address, port: options.metricsPort },
    }),
  });
  const { master } = running;

  return {
    endpoint: running.control?.target,
    metricsUrl: running.metrics?.url,
    tokenFile: running.control?.tokenFile,
    master,
    stopped: running.stopped,
    upgrade: (target, upgradeOptions) => master.upgrade(fromHere(target), upgradeOptions),
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
