/**
 * The entry point of every worker process (cluster `exec`).
 *
 * It installs the IPC bridge and the drain machinery, then runs the user's
 * module exactly as `node target` would: `process.argv[1]` is the target and
 * Module.runMain loads it as the main module, so CommonJS (`require.main ===
 * module` holds), ESM (top-level await included) and directories with a
 * package.json all behave as they do outside liveswap. A target that throws
 * while loading crashes the worker with Node's usual report on stderr, which
 * the master keeps for its error message.
 */
import cluster from 'node:cluster';
import Module from 'node:module';
import { WorkerEnv } from '../ipc.js';
import { drain, trackServers } from './drain.js';
import { installIpcBridge } from './ipc-bridge.js';
import { exitWhenMasterGone } from './orphan-guard.js';

const target = process.env[WorkerEnv.target];
if (!target) {
  process.stderr.write(`liveswap worker: ${WorkerEnv.target} is not set; workers are started by the liveswap master\n`);
  process.exit(78);
}

// The app may want to know which worker it is (logs, metrics).
if (cluster.worker) process.env[WorkerEnv.workerId] = String(cluster.worker.id);

installIpcBridge((envelope) => void drain(envelope.timeoutMs));

// The master owns every worker's life. A terminal's Ctrl-C (or a service
// manager's SIGTERM to the whole process group) reaches the workers too;
// without this they would die mid-request while the master is trying to
// drain them. Workers still exit on their own if the master disappears
// (cluster exits a worker whose IPC channel closes; orphan-guard.ts covers a
// worker that has already left the cluster).
// SIGHUP too: a closed terminal sends it to the whole group, and for the
// master it means "reload", which replaces the workers gracefully.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
exitWhenMasterGone();
trackServers();

process.argv[1] = target;
(Module as unknown as { runMain(): void }).runMain();
