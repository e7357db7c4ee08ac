/**
 * Assembles a running master: logger, pool, control server and output
 * reporting. Shared by the CLI (`liveswap -s`) and the API (`liveswap()`).
 */
import { checkControlSecurity, checkEndpoint, checkHostPort, type ControlEndpoint, type ControlSecurity } from './common/endpoint.js';
import { serverCredentials, startControlServer, type ControlServer } from './control/control-server.js';
import { invalidArgument, optionName, unavailable, type Spell } from './common/errors.js';
import { becomeForegroundMaster } from './supervisor/foreground.js';
import { checkPreUpgradeHook } from './supervisor/hook.js';
import { resolveTarget } from './common/target.js';
import type { Launcher } from './supervisor/launcher.js';
import { createLogger, type Logger, type LoggerOptions } from './common/logger.js';
import { resolveMasterConfig, type MasterConfig } from './common/config.js';
import { Master } from './supervisor/master.js';
import type { MetricsEndpoint, MetricsServer } from './control/metrics.js';
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
  /** Resolves after Die: every worker has exited and the control server is closed. */
  stopped: Promise<void>;
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
  // prom-client is loaded only by a master that serves metrics.
  const metricsModule = options.metrics ? await import('./control/metrics.js') : undefined;
  if (master.config.preUpgrade) {
    const problem = await checkPreUpgradeHook(master.config.preUpgrade, master.config.hookTimeoutMs);
    if (problem) throw invalidArgument(problem);
  }

  const metrics = metricsModule && new metricsModule.MasterMetrics(master);
  if (options.foreground) becomeForegroundMaster(master, log);

  let control: ControlServer | undefined;
  let metricsServer: MetricsServer | undefined;
  // Listen before anything can stop the master (a signal during start-up).
  const stopped = new Promise<void>((resolve) => {
    master.once('stopped', () => {
      void Promise.all([control?.close(), metricsServer?.close()]).then(() => {
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
    control = await startControlServer(master, options.control, log, options.security, serviceOptions).catch(giveUp);
    if (master.isStopping) {
      // Stopped while we were binding: nobody else will close it.
      await control.close();
      await giveUp(unavailable('the master was stopped while starting'));
    }
  }
  if (metricsModule && metrics && options.metrics) {
    metricsServer = await metricsModule.startMetricsServer(metrics, options.metrics, log).catch(giveUp);
    if (master.isStopping) {
      await metricsServer.close();
      await giveUp(unavailable('the master was stopped while starting'));
    }
  }
  if (options.target) await master.start(options.target).catch(giveUp);
  return { master, control, log, metrics: metricsServer, stopped };
}
