/**
 * The user's module runs as `node target` would: CommonJS (with
 * `require.main === module`), ESM with top-level await, a directory with a
 * package.json, and apps that signal readiness themselves.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { releaseDir } from './helpers/releases.js';
import { waitFor } from './helpers/wait.js';

test('CommonJS, ESM and directory targets, one upgrade after another', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('main-guard.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  // CommonJS that only starts when it is the main module.
  assert.equal((await get(port)).body, 'main-guard');

  const esm = await master.client.upgrade({ target: fixture('esm-app.mjs') });
  assert.equal(esm.target, fixture('esm-app.mjs'));
  assert.equal((await get(port)).body, 'esm');

  // A directory resolves like `node dir`: package.json "main".
  const dir = await master.client.upgrade({ target: fixture('dir-app') });
  assert.equal(dir.target, fixture('dir-app/server.js'));
  assert.equal((await get(port)).body, 'dir-app');

  const status = await master.client.status();
  assert.equal(status.generation, 3);
  assert.deepEqual(
    status.workers.map((w) => w.target),
    [fixture('dir-app/server.js'), fixture('dir-app/server.js')],
  );
});

test('ready mode "message": ready only when the app says so', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('ready-message.js'), {
    env: { APP_PORT: String(port) },
    args: ['--ready-mode', 'message'],
  });
  t.after(() => master.stop());
  const status = await master.client.status();
  assert.equal(status.counts!.ready, 2);
  for (const worker of status.workers) {
    assert.equal(worker.reason, 'sent the ready message');
    // The fixture listens at once and sends the message 300 ms later.
    assert.ok(worker.readyAt!.getTime() - worker.startedAt!.getTime() >= 250);
  }
  assert.equal((await get(port)).body, 'ready-message');
});

test('workers know who they are: LIVESWAP_WORKER_ID, LIVESWAP_GENERATION, LIVESWAP_TARGET', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const worker = (await master.client.status()).workers[0]!;
  const env = JSON.parse((await get(port, '/env')).body);
  assert.equal(env.LIVESWAP_WORKER_ID, String(worker.id));
  assert.equal(env.LIVESWAP_GENERATION, '1');
  assert.equal(env.LIVESWAP_TARGET, fixture('v1.js'));
  assert.equal((await get(port, '/pid')).body, `v1 ${worker.pid}`);
});

test('a symlinked target is pinned to the release it pointed at', async (t) => {
  const { current, release, flip } = releaseDir(['r1', 'r2']);
  const port = await freePort();
  const master = await startMaster(current, { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const before = await master.client.status();
  assert.equal(before.target, release('r1'));

  // Deploy r2 by moving the link, as capistrano-style deploys do; then a crash respawn happens.
  flip('r2');
  process.kill(before.workers[0]!.pid, 'SIGKILL');
  await waitFor('the respawned worker', async () => {
    const s = await master.client.status();
    return s.counts!.ready === 1 && s.workers[0]!.pid !== before.workers[0]!.pid;
  });
  assert.equal((await get(port)).body, 'r1', 'the respawn runs the release generation 1 started on');

  // The upgrade through the link moves to r2.
  const upgraded = await master.client.upgrade({ target: current });
  assert.equal(upgraded.target, release('r2'));
  assert.equal((await get(port)).body, 'r2');
});

test('SIGHUP after the link moved reloads the release it points to now; Kill before it keeps the running one', async (t) => {
  const { current, release, flip } = releaseDir(['r1', 'r2']);
  const port = await freePort();
  const master = await startMaster(current, { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const before = await master.client.status();
  assert.equal(before.target, release('r1'), 'the running release, resolved');
  assert.equal(before.requestedTarget, current, 'the path as given');

  flip('r2');
  // Kill (and a crash respawn) restart the release that runs: only an upgrade moves to the new link target.
  const killed = await master.client.kill();
  assert.deepEqual(killed.workers.map((w) => w.target), [release('r1'), release('r1')]);
  assert.equal((await get(port)).body, 'r1');

  master.child.kill('SIGHUP');
  await waitFor('the reload to finish', () => /SIGHUP reload done: generation 2 on 2 worker\(s\)/.test(master.stderr()), { timeoutMs: 20_000 });
  const after = await master.client.status();
  assert.equal(after.generation, 2);
  assert.equal(after.target, release('r2'), 'SIGHUP resolved the link again');
  assert.equal(after.requestedTarget, current, 'and kept the path as given for the next reload');
  assert.deepEqual(after.workers.map((w) => w.target), [release('r2'), release('r2')]);
  assert.equal((await get(port)).body, 'r2');

  // And back: a second flip and SIGHUP return to r1.
  flip('r1');
  master.child.kill('SIGHUP');
  await waitFor('the second reload to finish', () => /SIGHUP reload done: generation 3 on 2 worker\(s\)/.test(master.stderr()), { timeoutMs: 20_000 });
  assert.equal((await master.client.status()).target, release('r1'));
  assert.equal((await get(port)).body, 'r1');
});
