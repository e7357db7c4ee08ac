/**
 * What a user asks a master for, through the API (`liveswap(options)`) or the
 * command line (`liveswap -s`, whose flags map one to one onto these
 * options), and the one translation of it into the master's own options.
 * Loads nothing of the master: run.ts is imported by whoever starts one.
 */
import path from 'node:path';
import type { Cutover, ReadyMode } from './common/config.js';
import { bare } from './common/address.js';
import { DEFAULTS } from './common/defaults.js';
import { controlEndpoint } from './common/endpoint.js';
import type { LogFormat } from './common/logger.js';
import type { RunMasterOptions } from './run.js';

export interface LiveswapOptions {
  /** The module every worker runs (relative paths resolve against process.cwd()). */
  target: string;
  /** Number of workers (default 2). */
  forks?: number;
  /**
   * Follow `target`: when it (or any symlink on the way to it, e.g.
   * `current -> releases/N`) resolves to another file, upgrade to it.
   */
  follow?: boolean;
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
  /**
   * The full-access control token (TCP), at least 32 characters of visible
   * ASCII; default: a new random one at each start. Give every master of a
   * fleet the same one (e.g. from a Kubernetes Secret) so that one client
   * token reaches them all. It is still written to the token file.
   */
  token?: string;
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
  /**
   * Serve probes on this port (0 picks a free one): grpc.health.v1.Health and
   * HTTP GET /livez, /readyz. Plaintext, no token, up/down only; see docs/deploy.md.
   */
  healthPort?: number;
  /** With healthPort: the address to serve probes on (default: the control address; 127.0.0.1 with a socket). Any address, TLS or not. */
  healthAddress?: string;
}

/** What the command line may leave out (`liveswap -s` with no file waits for a Start call) and add. */
export interface MasterOptions extends Omit<LiveswapOptions, 'target'> {
  target?: string | undefined;
  /** A foreground master owns its process (signals, stdio): the CLI's. */
  foreground?: boolean;
  /** How errors name a bad setting: the API's option names by default, the CLI's flags. */
  spell?: RunMasterOptions['spell'];
}

/** Relative paths resolve against the working directory of the caller. */
export const fromHere = (file: string) => path.resolve(process.cwd(), file);

/** The user's options → the master's (defaults, absolute paths, endpoint). */
export function masterOptions(options: MasterOptions): RunMasterOptions {
  return {
    ...(options.target !== undefined && { target: fromHere(options.target) }),
    control: options.control === false ? false : controlEndpoint(options),
    security: {
      ...(options.tls && {
        tls: { cert: fromHere(options.tls.cert), key: fromHere(options.tls.key), ...(options.tls.ca && { ca: fromHere(options.tls.ca) }) },
      }),
      ...(options.insecure && { insecure: true }),
      ...(options.stateDir !== undefined && { stateDir: fromHere(options.stateDir) }),
      ...(options.token !== undefined && { token: options.token }),
    },
    ...(options.forks !== undefined && { forks: options.forks }),
    ...(options.follow && options.target !== undefined && { follow: fromHere(options.target) }),
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
      metrics: { address: bare(options.metricsAddress ?? DEFAULTS.address), port: options.metricsPort },
    }),
    ...(options.healthPort !== undefined && {
      health: { address: bare(options.healthAddress ?? (options.socket ? DEFAULTS.address : (options.address ?? DEFAULTS.address))), port: options.healthPort },
    }),
    ...(options.foreground && { foreground: true }),
    ...(options.spell && { spell: options.spell }),
  };
}
