/** The two kinds of server the benchmark runs the fixture app under. */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { fixture } from '../../test/helpers/paths.js';
import { startMaster, type MasterProcess } from '../../test/helpers/processes.js';
import { withDeadline } from '../../test/helpers/wait.js';

const PLAIN_CLUSTER = fileURLToPath(new URL('./plain-cluster.js', import.meta.url));

/** A liveswap master (the real CLI) serving test/fixtures/<target>.js on `port`. */
export function liveswapMaster(forks: number, port: number, target = 'v1'): Promise<MasterProcess> {
  return startMaster(fixture(`${target}.js`), { forks, env: { APP_PORT: String(port) } });
}

export interface PlainCluster {
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * The baseline: plain-cluster.ts serving test/fixtures/v1.js on `port` with
 * `forks` workers; `preload` is a module it imports before forking.
 */
export async function plainCluster(forks: number, port: number, preload?: string): Promise<PlainCluster> {
  const child = fork(PLAIN_CLUSTER, [], {
    env: { ...process.env, FORKS: String(forks), APP: fixture('v1.js'), APP_PORT: String(port), ...(preload && { PRELOAD: preload }) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await withDeadline('plain cluster to listen', once(child, 'message'), 15_000);
  return {
    pid: child.pid!,
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
