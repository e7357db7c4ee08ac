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
 *
 * A spare (LIVESWAP_SPARE=1) loads all of this ahead of time and waits for
 * the master's `run` message with the worker environment; from then on it is
 * indistinguishable from a worker forked for that release, minus Node's
 * start-up time.
 */
import cluster from 'node:cluster';
import Module from 'node:module';
import { WorkerEnv } from '../common/ipc.js';
import { drain, trackServers } from './drain.js';
import { installIpcBridge } from './ipc-bridge.js';
import { listenOnInheritedSockets } from './inherited-listeners.js';
import { exitWhenMasterGone } from './orphan-guard.js';
import { warmUp } from './warm-up.js';

const isSpare = process.env[WorkerEnv.spare] === '1';
if (!isSpare && !process.env[WorkerEnv.target]) {
  process.stderr.write(`liveswap worker: ${WorkerEnv.target} is not set; workers are started by the liveswap master\n`);
  process.exit(78);
}

// The app may want to know which worker it is (logs, metrics).
if (cluster.worker) process.env[WorkerEnv.workerId] = String(cluster.worker.id);

/** Runs the user's module exactly as `node target` would. */
function runApp(target: string): void {
  process.argv[1] = target;
  (Module as unknown as { runMain(): void }).runMain();
}

// A spare has nothing to do until the master hands it a release; until then
// this listener keeps its IPC channel (and so the process) alive.
const awaitRun = () => {};
let ran = false;
installIpcBridge({
  drain: (envelope) => void drain(envelope.timeoutMs),
  run: (envelope) => {
    if (!isSpare || ran) return;
    ran = true;
    delete process.env[WorkerEnv.spare];
    Object.assign(process.env, envelope.env);
    process.off('message', awaitRun);
    runApp(envelope.env[WorkerEnv.target]!);
  },
});

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
listenOnInheritedSockets();

if (isSpare) {
  warmUp();
  process.on('message', awaitRun);
  process.send!({ liveswap: 'spare' });
} else {
  runApp(process.env[WorkerEnv.target]!);
}
