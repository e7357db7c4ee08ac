/**
 * Spare processes: the master keeps processes booted ahead of time (Node
 * started, worker runtime loaded, no app) and hands an upgrade's new workers
 * to them, so a new worker is ready as soon as the app listens. A spare must
 * be indistinguishable from a worker forked for its release, and must never
 * outlive the master.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { childPids } from './helpers/proc-tree.js';
import { startMaster } from './helpers/processes.js';
import { expectGone, waitFor } from './helpers/wait.js';

test('an upgrade runs on spares booted before it; they run the release as a forked worker would; Die leaves none', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('main-guard.js'), { forks: 2, env: { APP_PORT: String(port) }, args: ['--spares', '2'] });
  t.after(() => master.stop());

  const workerPids = async () => (await master.client.status()).workers.map((w) => w.pid);
  const sparePids = async () => {
    const workers = await workerPids();
    return childPids(master.pid).filter((pid) => !workers.includes(pid));
  };
  const spares = await waitFor('two spares to be booted and waiting', async () => {
    const pids = await sparePids();
    return pids.length === 2 && (await master.client.status()).spares === 2 ? pids : undefined;
  });

  // The seed's own CommonJS guard (`require.main === module`) holds in a spare too.
  const upgraded = await master.client.upgrade({ target: fixture('main-guard.js') });
  assert.deepEqual(upgraded.workers.map((w) => w.pid).sort(), [...spares].sort(), 'the new workers are the spares');
  assert.equal((await get(port)).body, 'main-guard');

  // The worker environment is the release's, exactly as for a forked worker.
  await master.client.upgrade({ target: fixture('v2.js') });
  const status = await master.client.status();
  const seen = new Map<number, Record<string, string>>();
  await waitFor('both workers to answer /env', async () => {
    const reply = await get(port, '/env');
    seen.set(Number(reply.headers['x-pid']), JSON.parse(reply.body));
    return seen.size === 2;
  });
  for (const worker of status.workers) {
    // (The master's own environment, LIVESWAP_STATE_DIR here, is inherited as by any worker.)
    const { LIVESWAP_STATE_DIR: _inherited, ...env } = seen.get(worker.pid)!;
    assert.deepEqual(env, {
      LIVESWAP_GENERATION: String(status.generation),
      LIVESWAP_READY_MODE: 'listening',
      LIVESWAP_TARGET: fixture('v2.js'),
      LIVESWAP_WORKER_ID: String(worker.id),
    });
  }

  // New spares come back after a moment, and Die takes them down with the workers.
  const refilled = await waitFor('the spares to be refilled', async () => {
    const pids = await sparePids();
    return pids.length === 2 && (await master.client.status()).spares === 2 ? pids : undefined;
  });
  const died = await master.client.die({});
  assert.equal(died.stopped, 2, 'Die reports workers, not spares');
  assert.equal(await master.exited, 0);
  await expectGone([...refilled, ...status.workers.map((w) => w.pid)]);
});

test('--spares 0 keeps no spare processes', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) }, args: ['--spares', '0'] });
  t.after(() => master.stop());
  await master.client.upgrade({ target: fixture('v2.js') });
  // Spares would be forked 1 s after the last launch: look well after that.
  const after = Date.now() + 1500;
  await waitFor('1.5 s to pass', () => Date.now() >= after, { timeoutMs: 3000, intervalMs: 100 });
  const status = await master.client.status();
  assert.equal(status.spares, 0);
  assert.deepEqual(childPids(master.pid).sort(), status.workers.map((w) => w.pid).sort());
});
