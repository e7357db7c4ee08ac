/**
 * The hand-rolled deploy: a node:cluster primary, as people write one without
 * a process manager, that restarts its workers one by one on SIGHUP. The code
 * changes on disk (APP is a path through a `current` symlink that the deploy
 * points at the new release; each new worker resolves it afresh).
 *
 * For each old worker in turn: fork a new one, wait until it listens, then
 * worker.disconnect() the old one and kill it if it has not exited 2 s later
 * (the example of Node's docs for worker.disconnect()), and wait for its exit.
 *
 * Run as a child of the bench with an IPC channel: FORKS, APP and APP_PORT in
 * the environment. Sends 'ready' once every worker listens, then
 * {restarted, ms} or {failed, reason} after each SIGHUP. Exits, killing its
 * workers, on SIGTERM or when the bench goes away.
 */
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';

const KILL_AFTER_MS = 2000;
const LISTEN_DEADLINE_MS = 10_000;

const forks = Number(process.env.FORKS);
cluster.setupPrimary({ exec: process.env.APP! });
let serving: Worker[] = [];
let restarting = false;

/** Resolves once the worker listens; rejects if it exits first or takes longer than LISTEN_DEADLINE_MS. */
function listening(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`worker ${worker.id} not listening after ${LISTEN_DEADLINE_MS} ms`)), LISTEN_DEADLINE_MS);
    const onListening = () => done();
    const onExit = () => done(new Error(`worker ${worker.id} exited before listening`));
    const done = (error?: Error) => {
      clearTimeout(timer);
      worker.off('listening', onListening).off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    worker.once('listening', onListening).once('exit', onExit);
  });
}

async function retire(worker: Worker): Promise<void> {
  if (worker.isDead()) return;
  const exited = once(worker, 'exit');
  const timer = setTimeout(() => worker.kill('SIGKILL'), KILL_AFTER_MS);
  worker.disconnect();
  await exited;
  clearTimeout(timer);
}

async function restart(): Promise<void> {
  const began = performance.now();
  for (const old of [...serving]) {
    const fresh = cluster.fork();
    try {
      await listening(fresh);
    } catch (error) {
      fresh.kill('SIGKILL');
      process.send?.({ failed: true, reason: (error as Error).message });
      return;
    }
    serving = [...serving.filter((w) => w !== old), fresh];
    await retire(old);
  }
  process.send?.({ restarted: true, ms: performance.now() - began });
}

process.on('SIGHUP', () => {
  if (restarting) return;
  restarting = true;
  void restart().finally(() => (restarting = false));
});
process.on('SIGTERM', () => {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
  process.exit(0);
});
process.on('disconnect', () => process.emit('SIGTERM'));

serving = Array.from({ length: forks }, () => cluster.fork());
await Promise.all(serving.map(listening));
process.send?.('ready');
