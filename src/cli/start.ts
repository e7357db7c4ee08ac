/**
 * `liveswap -s`: a master in the foreground. Loaded by main.ts for -s alone,
 * so that no other command loads the master (winston, node:cluster, the gRPC
 * server).
 *
 * It reports its own failures: main.ts may run from the CLI bundle (see
 * bin/liveswap.cjs), which has its own copies of the error classes, while
 * this module and the master it starts always load the compiled files; an
 * error must be told apart by the classes that threw it.
 */
import { masterOptions } from '../options.js';
import { runMaster } from '../run.js';
import type { Args } from './args.js';
import { masterOptionsOf } from './flags.js';
import { EXIT, report } from './report.js';

export async function runStart(args: Args): Promise<number> {
  try {
    const options = masterOptions(masterOptionsOf(args));
    const running = await runMaster(options);
    const { master, control, log } = running;
    const what = options.target ? `${master.config.forks} worker(s) ready on ${options.target}` : 'no workers yet (waiting for Start)';
    log.info(`master pid ${process.pid} up: ${what}; control on ${control!.target}`);
    await running.stopped;
    // The first master that handed its place on stays as the keeper, with the master of the day's exit status.
    const keeper = running.keeper();
    if (keeper) return await new Promise<number>((resolve) => keeper.once('master-exit', resolve));
    return EXIT.ok;
  } catch (error) {
    return report(error, args);
  }
}
