/**
 * Hygiene: 100 consecutive upgrades under light load must leak nothing.
 *
 *   npm run bench:hygiene       (BENCH_UPGRADES=100 by default)
 *
 * A real master (bench/hygiene-master.ts, its own process) runs 2 workers on
 * a fixture app; 4 loopback clients (2 keep-alive, 2 connection-close) send
 * requests throughout; the bench upgrades v1 → v2 → v1 … BENCH_UPGRADES
 * times. Before the first upgrade, after a warm-up of 5, and at the end it
 * and every BENCH_REPORT_EVERY (25) upgrades it records the master's RSS and
 * heap (after a full GC), its open file descriptors and libuv handles, its
 * event-listener counts (master, pool, process, cluster), its live child
 * processes and cluster's worker table; then the failed requests, and that every
 * worker ever forked is gone after Die. Prints a markdown table and writes
 * bench/results/hygiene.json.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/client/index.js';
import type { HygieneReport } from './hygiene-master.js';
import { freePort, startLoad } from '../test/helpers/net.js';
import { fixture, ROOT, tempDir } from '../test/helpers/paths.js';
import { childPids } from '../test/helpers/proc-tree.js';
import { expectGone, waitFor } from '../test/helpers/wait.js';

const UPGRADES = Number(process.env.BENCH_UPGRADES ?? 100);
const WARM_UP = Math.min(5, UPGRADES);
const REPORT_EVERY = Number(process.env.BENCH_REPORT_EVERY ?? 25);

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

async function main() {
  const port = await freePort();
  const socket = path.join(tempDir(), 'control.sock');
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'hygiene-master.js');
  const master = fork(script, [fixture('v1.js'), socket], {
    execArgv: ['--expose-gc'],
    env: { ...process.env, APP_PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const masterExited = new Promise<number | null>((resolve) => master.once('exit', (code) => resolve(code)));
  const client = connect({ socket });
  await waitFor('the master to serve', async () => (await client.status()).counts!.ready === 2, { timeoutMs: 20_000 });

  const report = () =>
    new Promise<HygieneReport>((resolve) => {
      master.once('message', (message) => resolve(message as HygieneReport));
      master.send('report');
    });
  const snapshot = async (label: string) => {
    const r = await report();
    const status = await client.status();
    return {
      label,
      rssMiB: +(r.rss / 2 ** 20).toFixed(1),
      heapMiB: +(r.heapUsed / 2 ** 20).toFixed(1),
      heapTotalMiB: +(r.heapTotal / 2 ** 20).toFixed(1),
      externalMiB: +(r.external / 2 ** 20).toFixed(1),
      fds: r.fds,
      handles: r.handles,
      clusterWorkers: r.clusterWorkers,
      listeners: sum(r.listeners.master) + sum(r.listeners.pool) + sum(r.listeners.process) + sum(r.listeners.cluster),
      detail: r.listeners,
      children: childPids(master.pid!).length,
      workers: status.workers.length,
      generation: status.generation,
    };
  };

  const load = startLoad(port, { keepAlive: 2, close: 2, maxRequests: 1_000_000 });
  const everyPid = new Set<number>();
  const rows = [await snapshot('before')];
  const durations: number[] = [];
  let current = 'v1';
  for (let i = 1; i <= UPGRADES; i++) {
    for (const w of (await client.status()).workers) everyPid.add(w.pid);
    current = current === 'v1' ? 'v2' : 'v1';
    const began = performance.now();
    const result = await client.upgrade({ target: fixture(`${current}.js`) });
    durations.push(performance.now() - began);
    for (const w of result.workers) everyPid.add(w.pid);
    if (i === WARM_UP) rows.push(await snapshot(`after ${i} (warm)`));
    else if (i % REPORT_EVERY === 0 && i !== UPGRADES) rows.push(await snapshot(`after ${i}`));
    if (i % 10 === 0) process.stderr.write(`${i} upgrades\n`);
  }
  const stats = await load.stop();
  rows.push(await snapshot(`after ${UPGRADES}`));

  await client.die();
  client.close();
  const exitCode = await masterExited;
  const leftover = [...everyPid].filter((pid) => {
    try {
      process.kill(pid, 0);
      return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false;
    }
  });
  await expectGone([...everyPid], 5000).catch(() => {});

  const columns = ['label', 'rssMiB', 'heapMiB', 'heapTotalMiB', 'externalMiB', 'fds', 'handles', 'listeners', 'children', 'clusterWorkers', 'generation'] as const;
  const table = [
    `| ${['', 'master RSS MiB', 'heap MiB (after GC)', 'V8 heap reserved MiB', 'external MiB', 'fds', 'libuv handles', 'event listeners', 'child processes', 'cluster.workers', 'generation'].join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${columns.map((c) => String(row[c])).join(' | ')} |`),
  ].join('\n');
  const sorted = [...durations].sort((a, b) => a - b);
  const summary = {
    upgrades: UPGRADES,
    requests: stats.ok + stats.failed,
    failed: stats.failed,
    errors: stats.errors,
    upgradeMs: { median: Math.round(sorted[Math.floor(sorted.length / 2)]!), max: Math.round(sorted.at(-1)!) },
    workersForked: everyPid.size,
    workersLeftAfterDie: leftover.length,
    masterExitCode: exitCode,
  };
  console.log(`\nHygiene: ${UPGRADES} consecutive upgrades of 2 workers under light load (4 clients), node ${process.version}\n`);
  console.log(table);
  console.log(
    `\n${summary.requests} requests, ${summary.failed} failed${summary.failed ? ` ${JSON.stringify(summary.errors)}` : ''}; ` +
      `upgrade median ${summary.upgradeMs.median} ms, max ${summary.upgradeMs.max} ms; ` +
      `${summary.workersForked} workers forked, ${summary.workersLeftAfterDie} left after Die; master exit code ${exitCode}`,
  );
  const out = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'hygiene.json'), JSON.stringify({ node: process.version, rows, summary }, null, 2));
  if (summary.failed > 0 || leftover.length > 0 || exitCode !== 0) process.exitCode = 1;
}

await main();
