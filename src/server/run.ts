/**
 * Assembles a running master: logger, pool, control server and output
 * reporting. Shared by the CLI (`liveswap -s`) and the API (`liveswap()`).
 */
import { startControlServer, type ControlEndpoint, type ControlServer } from './control-server.js';
import type { Launcher } from './launcher.js';
import { createLogger, type Logger, type LoggerOptions } from './logger.js';
import { resolveMasterConfig, type MasterConfig } from './config.js';
import { Master } from './master.js';

export interface RunMasterOptions extends Partial<MasterConfig> {
  /** Absolute path to start on; without it the master waits for a Start call. */
  target?: string;
  /** Where the control service listens; false for none (API use only). */
  control: ControlEndpoint | false;
  log?: LoggerOptions;
  /** Worker stdout/stderr: copied to ours with a prefix (default), or dropped. */
  workerOutput?: 'prefix' | 'ignore';
  /** SIGINT/SIGTERM stop the master gracefully (the CLI sets this; a library should not). */
  handleSignals?: boolean;
  /** @internal the process-spawning seam, for state-machine tests. */
  launcher?: Launcher;
}

export interface RunningMaster {
  master: Master;
  control: ControlServer | undefined;
  log: Logger;
  /** Resolves after Die: every worker has exited and the control server is closed. */
  stopped: Promise<void>;
}

export async function runMaster(options: RunMasterOptions): Promise<RunningMaster> {
  const log = createLogger(options.log);
  const master = new Master(resolveMasterConfig(options), log, options.launcher);

  master.on('transition', ({ worker, from, to }) => {
    const move = from ? `${from} → ${to}` : to;
    log.info(`worker ${worker.id} (pid ${worker.pid}, gen ${worker.generation}) ${move}: ${worker.reason}`);
  });
  if (options.workerOutput !== 'ignore') {
    master.on('output', (worker, stream, line) => {
      const sink = stream === 'stdout' ? process.stdout : process.stderr;
      sink.write(`[worker ${worker.id} g${worker.generation}] ${line}\n`);
    });
  }

  if (options.handleSignals) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        log.info(`${signal}: stopping gracefully`);
        void master.die();
      });
    }
  }

  const control = options.control === false ? undefined : await startControlServer(master, options.control, log);
  const stopped = new Promise<void>((resolve) => {
    master.once('stopped', () => {
      void (control?.close() ?? Promise.resolve()).then(() => {
        log.info('master stopped');
        resolve();
      });
    });
  });

  if (options.target) {
    try {
      await master.start(options.target);
    } catch (error) {
      await master.die({ force: true });
      await stopped;
      throw error;
    }
  }
  return { master, control, log, stopped };
}
