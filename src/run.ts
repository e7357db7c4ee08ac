/**
 * Assembles a running master: logger, pool, control server and output
 * reporting. Shared by the CLI (`liveswap -s`) and the API (`liveswap()`).
 */
import { checkControlSecurity, checkEndpoint, checkHostPort, type ControlEndpoint, type ControlSecurity } from './common/endpoint.js';
import { serverCredentials, startControlServer, type ControlServer } from './control/control-server.js';
import { failedPrecondition, invalidArgument, LiveswapError, optionName, unavailable, type Spell } from './common/errors.js';
import { becomeForegroundMaster } from './supervisor/foreground.js';
import { checkPreUpgradeHook } from './supervisor/hook.js';
import { resolveTarget } from './common/target.js';
import type { Launcher } from './supervisor/launcher.js';
import { createLogger, type Logger, type LoggerOptions } from './common/logger.js';
import { resolveMasterConfig, type MasterConfig } from './common/config.js';
import { Master } from './supervisor/master.js';
import type { MetricsEndpoint, MetricsServer } from './control/metrics.js';
import type { HealthEndpoint, HealthServer } from './control/health-port.js';
import { clusterListeners, inheritListeners, recordClusterListeners, SETTLE_MAX_MS, stopAccepting } from './supervisor/listeners.js';
import { Keeper } from './supervisor/keeper.js';
import { isSuccessor, localKeeper, parentKeeper, receiveHandover, successorFailed, tellKeeper, type KeeperLink } from './supervisor/succession.js';
import { HEALTH_KEY, MASTER_PORT_KEYS, METRICS_KEY, type BeginMessage } from './common/handover.js';

/** How long a successor waits for the keeper's handover message (it is sent as the successor starts). */
const HANDOVER_WAIT_MS = 10_000;
import type { ControlLimits } from './control/limits.js';

export interface RunMasterOptions extends Partial<MasterConfig> {
  /** Absolute path to start on; without it the master waits for a Start call. */
  target?: string;
  /** Where the control service listens; false for none (API use only). */
  control: ControlEndpoint | false;
  /** TLS, --insecure and the token's state directory (TCP control). */
  security?: ControlSecurity;
  log?: LoggerOptions;
  /** Serve Prometheus metrics over HTTP at /metrics here (see metrics.ts); none by default. */
  metrics?: MetricsEndpoint;
  /** Serve probes (grpc.health.v1, GET /livez and /readyz) here, plaintext and tokenless (see health-port.ts); none by default. */
  health?: HealthEndpoint;
  /** Worker stdout/stderr: copied to ours with a prefix (default), or dropped. */
  workerOutput?: 'prefix' | 'ignore';
  /**
   * This process is a foreground master (the CLI): handle SIGINT/SIGTERM and
   * guard stdout/stderr. A library embedding the master should not set it.
   */
  foreground?: boolean;
  /** How an error names a bad setting: the API's option names by default; the CLI's flags. */
  spell?: Spell;
  /** @internal events a WatchWorkers client may fall behind before it is disconnected (default 1024). */
  watchBufferEvents?: number;
  /** @internal the control server's limits (control/limits.ts), for tests that cannot wait for the defaults. */
  controlLimits?: Partial<ControlLimits>;
  /** @internal the process-spawning seam, for state-machine tests. */
  launcher?: Launcher;
}

export interface RunningMaster {
  master: Master;
  control: ControlServer | undefined;
  log: Logger;
  /** The metrics endpoint, when asked for. */
  metrics: MetricsServer | undefined;
  /** The health port, when asked for. */
  health: HealthServer | undefined;
  /** Resolves after Die: every worker has exited and the control server is closed. */
  stopped: Promise<void>;
  /** Set once this process handed its master's place to a successor and keeps it (the CLI's first master). */
  keeper(): Keeper | undefined;
}

export async function runMaster(options: RunMasterOptions): Promise<RunningMaster> {
  const spell = options.spell ?? optionName;
  const log = createLogger(options.log);
  const master = new Master(resolveMasterConfig(options, spell), log, options.launcher);

  master.on('transition', ({ worker, from, to }) => {
    const move = from ? `${from} → ${to}` : to;
    log.info(`worker ${worker.id} (pid ${worker.pid}, gen ${worker.generation}) ${move}: ${worker.reason}`);
  });
  if (options.workerOutput !== 'ignore') {
    const json = options.log?.format === 'json';
    master.on('output', (worker, stream, line) => {
      const sink = stream === 'stdout' ? process.stdout : process.stderr;
      // With JSON logs every line of output is JSON, the workers' included.
      const text = json
        ? JSON.stringify({ timestamp: new Date().toISOString(), worker: worker.id, generation: worker.generation, stream, message: line })
        : `[worker ${worker.id} g${worker.generation}] ${line}`;
      sink.write(`${text}\n`);
    });
  }

  // Everything that can be checked is checked before anything binds or forks.
  if (options.control !== false) {
    checkEndpoint(options.control, { spell });
    checkControlSecurity(options.control, options.security, spell);
    serverCredentials(options.security);
  }
  if (options.target) resolveTarget(options.target);
  if (options.metrics) checkHostPort(options.metrics, { spell }, { address: 'metricsAddress', port: 'metricsPort' });
  if (options.health) checkHostPort(options.health, { spell }, { address: 'healthAddress', port: 'healthPort' });
  // prom-client is loaded only by a master that serves metrics.
  const metricsModule = options.metrics ? await import('./control/metrics.js') : undefined;
  if (master.config.preUpgrade) {
    const problem = await checkPreUpgradeHook(master.config.preUpgrade, master.config.hookTimeoutMs);
    if (problem) throw invalidArgument(problem);
  }

  const metrics = metricsModule && new metricsModule.MasterMetrics(master);
  if (options.foreground) becomeForegroundMaster(master, log);
  // Only the CLI's master owns its process, so only it can hand that process's place on.
  const successor = options.foreground && options.control !== false ? isSuccessor() : false;
  let handover: BeginMessage | undefined;
  if (successor) {
    try {
      handover = await receiveHandover(HANDOVER_WAIT_MS);
    } catch (error) {
      tellKeeper({ liveswapHandover: 'failed', reason: (error as Error).message, stderrTail: [] });
      throw error;
    }
    // The app's sockets go to the workers; the metrics and probe ports are this master's own (startMasterPorts).
    inheritListeners(handover.listeners.filter((l) => !MASTER_PORT_KEYS.includes(l.key)));
    master.lineage = { ...handover.succession.lineage, masterUpgrades: handover.succession.lineage.masterUpgrades + 1 };
    // The keeper gone (killed): nobody supervises this master any more.
    process.once('disconnect', () => {
      log.warn('the keeper is gone; stopping');
      void master.die();
    });
  }
  if (options.foreground) recordClusterListeners();

  let control: ControlServer | undefined;
  let metricsServer: MetricsServer | undefined;
  let healthServer: HealthServer | undefined;
  // Listen before anything can stop the master (a signal during start-up).
  const stopped = new Promise<void>((resolve) => {
    master.once('stopped', () => {
      void Promise.all([control?.close(), metricsServer?.close(), healthServer?.close()]).then(() => {
        metrics?.dispose();
        log.info('master stopped');
        resolve();
      });
    });
  });
  const giveUp = async (error: unknown): Promise<never> => {
    // A start that failed on its own leaves nothing worth draining; one that
    // was cancelled by a graceful stop (Ctrl-C) lets that stop finish gracefully.
    if (!master.isStopping) await master.die({ force: true });
    await stopped;
    throw error;
  };

  if (options.control !== false) {
    const serviceOptions = {
      ...(options.watchBufferEvents !== undefined && { watchBufferEvents: options.watchBufferEvents }),
      ...(options.controlLimits && { limits: options.controlLimits }),
    };
    const inherited = handover && { fd: handover.controlFd, tokens: handover.succession.tokens };
    control = await startControlServer(master, options.control, log, options.security, serviceOptions, inherited).catch((error) => {
      if (successor) tellKeeper({ liveswapHandover: 'failed', reason: `control service: ${(error as Error).message}`, stderrTail: [] });
      return giveUp(error);
    });
    if (master.isStopping) {
      // Stopped while we were binding: nobody else will close it.
      await control.close();
      await giveUp(unavailable('the master was stopped while starting'));
    }
  }
  /**
   * The metrics and health-probe ports. A successor serves them on the
   * sockets it inherited, and only once its pool is ready: a probe that
   * reaches it then says what the old master said, SERVING.
   */
  const startMasterPorts = async () => {
    const inheritedFd = (key: string) => handover?.listeners.find((l) => l.key === key)?.fd;
    if (metricsModule && metrics && options.metrics) {
      metricsServer = await metricsModule.startMetricsServer(metrics, options.metrics, log, inheritedFd(METRICS_KEY));
      if (master.isStopping) {
        await metricsServer.close();
        throw unavailable('the master was stopped while starting');
      }
    }
    if (options.health) {
      const { startHealthServer } = await import('./control/health-port.js');
      healthServer = await startHealthServer(master, options.health, log, inheritedFd(HEALTH_KEY));
      if (master.isStopping) {
        await healthServer.close();
        throw unavailable('the master was stopped while starting');
      }
    }
  };
  if (!handover) await startMasterPorts().catch(giveUp);
  let keeper: Keeper | undefined;
  if (options.foreground && control) {
    const running = control;
    const link: KeeperLink = successor ? parentKeeper() : (request, listeners, handle) => localKeeper((keeper ??= new Keeper(log)))(request, listeners, handle);
    master.successorStarter = async ({ node, release, forks, timeoutMs, signal }) => {
      const listeners = clusterListeners();
      for (const [key, server] of [
        [METRICS_KEY, metricsServer],
        [HEALTH_KEY, healthServer],
      ] as const) {
        if (!server) continue;
        const handle = server.listenerHandle();
        if (!handle || handle.fd < 0) throw failedPrecondition(`cannot find the ${key} listener to hand over`);
        listeners.push({ key, handle });
      }
      const onPath = listeners.find((l) => l.key.startsWith('unix:'));
      if (onPath) throw failedPrecondition(`the app listens on the unix socket ${onPath.key.slice(5)}, which cannot be handed over yet (see docs/self-upgrade.md)`);
      const controlHandle = running.listenerHandle();
      if (!controlHandle || controlHandle.fd < 0) throw failedPrecondition('cannot find the control listener to hand over (this grpc-js keeps it elsewhere)');
      const outcome = await link(
        {
          release,
          forks,
          tokens: running.tokens,
          lineage: { keeperPid: master.lineage.keeperPid || process.pid, masterUpgrades: master.lineage.masterUpgrades },
          timeoutMs,
          node: node.execPath,
        },
        listeners,
        controlHandle,
      );
      if (signal.aborted) throw unavailable('the master is shutting down');
      if (outcome.liveswapHandover === 'failed') throw successorFailed(outcome);
      // From here the successor accepts alone: new connections go there, watchers are told to reconnect.
      running.handOver();
      // The successor answers scrapes and probes from here (its pool is ready).
      metricsServer?.stopAccepting();
      healthServer?.stopAccepting();
      const stranded = await stopAccepting();
      if (stranded > 0) log.warn(`${stranded} connection(s) accepted before the handover were not taken by a worker within ${SETTLE_MAX_MS / 1000} s; draining anyway (node:cluster resets those still queued when the last worker leaves)`);
      if (!successor) keeper!.keep();
      return { pid: outcome.pid, nodeVersion: outcome.nodeVersion };
    };
  }

  if (handover) {
    const release = handover.succession.release;
    try {
      if (release) await master.start(release.target, { forks: handover.succession.forks, readyMode: release.readyMode, continues: release });
      await startMasterPorts();
    } catch (error) {
      tellKeeper({ liveswapHandover: 'failed', reason: (error as Error).message, stderrTail: error instanceof LiveswapError ? [...error.stderrTail] : [] });
      return giveUp(error);
    }
    tellKeeper({ liveswapHandover: 'ready', pid: process.pid, nodeVersion: process.version });
  } else if (options.target) await master.start(options.target).catch(giveUp);
  return { master, control, log, metrics: metricsServer, health: healthServer, stopped, keeper: () => (master.handedOver ? keeper : undefined) };
}
