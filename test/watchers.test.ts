/**
 * WatchWorkers at scale and under abuse: 500 watchers that connect and go
 * away (cancelled by the client, or with their process SIGKILLed) leave no
 * stream, listener or file descriptor behind; and a watcher that never reads
 * is disconnected (RST_STREAM ENHANCE_YOUR_CALM, which gRPC clients report as
 * RESOURCE_EXHAUSTED) once it is the configured number of events behind,
 * while the master keeps answering everyone else at once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { test } from 'node:test';
import { connect, type LiveswapClient } from '../src/client/index.js';
import { masterWithStuckWatcher } from './helpers/grpc.js';
import { freePort, get } from './helpers/net.js';
import { fixture, ROOT } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { expectGone, waitFor } from './helpers/wait.js';

const fdCount = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;

/** A separate process holding `n` watch streams open; prints "ready" once every snapshot has arrived. */
function watcherProcess(socket: string, n: number): { child: ChildProcess; ready: Promise<void> } {
  const client = path.join(ROOT, 'dist', 'src', 'client', 'index.js');
  const source = `
    import { connect } from ${JSON.stringify(client)};
    const c = connect({ socket: ${JSON.stringify(socket)} });
    let ready = 0;
    for (let i = 0; i < ${n}; i++) {
      (async () => {
        for await (const item of c.watch()) if (item.event?.$case === 'snapshot' && ++ready === ${n}) console.log('ready');
      })().catch(() => {});
    }
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`watcher process exited with ${code} before it was ready`)));
  });
  return { child, ready };
}

test('500 watchers connecting and going away (cancelled or killed) leave no stream, listener or fd behind', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  assert.equal((await master.client.status()).watchers, 0);
  // Spares hold fds too (IPC, stdout, stderr): count from the steady state, with them booted.
  await waitFor('the spares to be booted', async () => (await master.client.status()).spares === 2);
  const fdsBefore = fdCount(master.pid);

  // 300 in this process over 3 connections, cancelled by us; 200 in 4 processes of 50, SIGKILLed.
  const clients: LiveswapClient[] = Array.from({ length: 3 }, () => connect({ socket: master.socket }));
  t.after(() => clients.forEach((c) => c.close()));
  const abort = new AbortController();
  setMaxListeners(400, abort.signal); // one signal for 300 watches
  t.after(() => abort.abort());
  const transitionsSeen = new Array<number>(300).fill(0);
  const snapshots: Promise<void>[] = [];
  const loops: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) {
    let gotSnapshot!: () => void;
    snapshots.push(new Promise((resolve) => (gotSnapshot = resolve)));
    loops.push(
      (async () => {
        for await (const item of clients[i % 3]!.watch({ signal: abort.signal })) {
          if (item.event?.$case === 'snapshot') gotSnapshot();
          else transitionsSeen[i]!++;
        }
      })(),
    );
  }
  const children = Array.from({ length: 4 }, () => watcherProcess(master.socket, 50));
  t.after(() => children.forEach(({ child }) => child.kill('SIGKILL')));
  await Promise.all([...snapshots, ...children.map((c) => c.ready)]);
  assert.equal((await master.client.status()).watchers, 500);

  // Every watcher gets the transitions of a Kill (2 workers: 2 exited, 2 starting, 2 ready).
  await master.client.kill();
  await waitFor('every in-process watcher to see the 6 transitions', () => transitionsSeen.every((n) => n >= 6));

  abort.abort();
  await Promise.all(loops);
  for (const { child } of children) child.kill('SIGKILL');
  await expectGone(children.map(({ child }) => child.pid!));
  const settled = await waitFor('every watch stream to be gone', async () => {
    const s = await master.client.status();
    return s.watchers === 0 ? s : undefined;
  });
  assert.equal(settled.counts!.ready, 2);
  // The 3 client connections of this process are still open; the 4 killed processes' are not.
  await waitFor('the master\'s file descriptors to come back', () => fdCount(master.pid) <= fdsBefore + 3, { timeoutMs: 5000 }).catch(() => {
    throw new Error(`master fds: ${fdsBefore} before, ${fdCount(master.pid)} after`);
  });
  clients.forEach((c) => c.close());
  await waitFor('the master\'s file descriptors to be back to where they were', () => fdCount(master.pid) <= fdsBefore, { timeoutMs: 5000 }).catch(() => {
    throw new Error(`master fds: ${fdsBefore} before, ${fdCount(master.pid)} after`);
  });
  assert.equal((await get(port)).body, 'v1');
});

test('a watcher that never reads is disconnected with ENHANCE_YOUR_CALM (RESOURCE_EXHAUSTED) and never slows the master', async (t) => {
  const port = await freePort();
  // A small buffer (the default is 1024 events), so a few Kills put the stuck watcher past it.
  const { client, stuckClosed: closed, stop } = await masterWithStuckWatcher(port, 16);
  t.after(stop);

  // A well-behaved watcher alongside it gets everything.
  const abort = new AbortController();
  t.after(() => abort.abort());
  let fastSeen = 0;
  const fast = (async () => {
    for await (const item of client.watch({ signal: abort.signal })) if (item.event?.$case === 'transition') fastSeen++;
  })();

  let slowest = 0;
  for (let i = 0; i < 4; i++) {
    await client.kill(); // 6 transitions each
    const began = Date.now();
    await client.status();
    slowest = Math.max(slowest, Date.now() - began);
  }
  assert.equal(await closed, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 'the slow watcher was reset');
  const s = await client.status();
  assert.equal(s.watchers, 1, 'only the well-behaved watcher is left');
  // Four Kills and four GetStatus answered while it was stuck. (How fast: npm run bench:timings.)
  t.diagnostic(`slowest GetStatus while a watcher was stuck: ${slowest} ms`);
  await waitFor('the fast watcher to see all 24 transitions', () => fastSeen >= 24);
  abort.abort();
  await fast;
  assert.equal((await get(port)).body, 'v1');
});
