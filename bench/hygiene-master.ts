/**
 * The master for bench/hygiene.ts: a real liveswap master (runMaster, as
 * `liveswap -s` runs it) in its own process, which also answers a "report"
 * IPC message from the bench with what only it can see: its RSS and heap
 * (after a full GC), its open file descriptors, and the listener count of
 * every event on the master, the pool, `process` and `cluster`.
 *
 *   node --expose-gc dist/bench/hygiene-master.js TARGET SOCKET   (forked by hygiene.ts)
 */
import cluster from 'node:cluster';
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { runMaster } from '../src/run.js';

const [target, socket] = process.argv.slice(2);
if (!target || !socket || !process.send) {
  console.error('usage: forked by bench/hygiene.ts with TARGET SOCKET');
  process.exit(2);
}

const running = await runMaster({
  target,
  forks: 2,
  control: { socket },
  log: { level: 'warn' },
  workerOutput: 'ignore',
  foreground: true,
});

function listeners(emitter: EventEmitter): Record<string, number> {
  return Object.fromEntries(emitter.eventNames().map((name) => [String(name), emitter.listenerCount(name)]));
}

export interface HygieneReport {
  rss: number;
  heapUsed: number;
  /** Memory V8 has reserved for its heap (used or not), and memory outside it held by JS objects (Buffers). */
  heapTotal: number;
  external: number;
  fds: number;
  /** Live libuv handles (sockets, timers, pipes, child processes) and cluster's worker table. */
  handles: number;
  clusterWorkers: number;
  listeners: Record<'master' | 'pool' | 'process' | 'cluster', Record<string, number>>;
}

process.on('message', (message) => {
  if (message !== 'report') return;
  (globalThis as { gc?: () => void }).gc?.();
  const memory = process.memoryUsage();
  const report: HygieneReport = {
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    heapTotal: memory.heapTotal,
    external: memory.external,
    fds: fs.readdirSync('/proc/self/fd').length,
    handles: (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length,
    clusterWorkers: Object.keys(cluster.workers ?? {}).length,
    listeners: {
      master: listeners(running.master),
      pool: listeners(running.master.pool),
      process: listeners(process),
      cluster: listeners(cluster),
    },
  };
  process.send!(report);
});
// The bench went away: do not outlive it.
process.on('disconnect', () => void running.master.die({ force: true }));
await running.stopped;
process.exit(0);
