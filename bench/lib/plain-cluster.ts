/**
 * The baseline: a hand-rolled node:cluster primary running the same app with
 * the same number of workers, as people do without a process manager. Run as
 * a child of the benchmark: FORKS and APP in the environment; it sends
 * 'ready' once every worker listens, and on SIGTERM kills its workers and exits.
 * PRELOAD names a module to import before forking (the RSS controls load
 * node:tls, which grpc-js loads in every liveswap master).
 */
import cluster from 'node:cluster';

if (process.env.PRELOAD) await import(process.env.PRELOAD);

const forks = Number(process.env.FORKS);
cluster.setupPrimary({ exec: process.env.APP! });
let listening = 0;
cluster.on('listening', () => {
  if (++listening === forks) process.send?.('ready');
});
for (let i = 0; i < forks; i++) cluster.fork();
process.on('SIGTERM', () => {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
  process.exit(0);
});
process.on('disconnect', () => process.emit('SIGTERM'));
