/**
 * The user's module runs as `node target` would: CommonJS (with
 * `require.main === module`), ESM with top-level await, a directory with a
 * package.json, and apps that signal readiness themselves.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import fs from 'node:fs';
import path from 'node:path';
import { fixture, tempDir } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
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
  const deploy = tempDir();
  t.after(() => fs.rmSync(deploy, { recursive: true, force: true }));
  for (const release of ['r1', 'r2']) {
    fs.mkdirSync(path.join(deploy, release));
    fs.writeFileSync(
      path.join(deploy, release, 'app.js'),
      `require(${JSON.stringify(fixture('lib/serve.js'))})(${JSON.stringify(release)})\n`,
    );
  }
  fs.writeFileSync(path.join(deploy, 'package.json'), '{"type":"commonjs"}');
  fs.symlinkSync(path.join(deploy, 'r1'), path.join(deploy, 'current'));

  const port = await freePort();
  const master = await startMaster(path.join(deploy, 'current', 'app.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const before = await master.client.status();
  assert.equal(before.target, path.join(deploy, 'r1', 'app.js'));

  // Deploy r2 by moving the link, as capistrano-style deploys do; then a crash respawn happens.
  fs.unlinkSync(path.join(deploy, 'current'));
  fs.symlinkSync(path.join(deploy, 'r2'), path.join(deploy, 'current'));
  process.kill(before.workers[0]!.pid, 'SIGKILL');
  await waitFor('the respawned worker', async () => {
    const s = await master.client.status();
    return s.counts!.ready === 1 && s.workers[0]!.pid !== before.workers[0]!.pid;
  });
  assert.equal((await get(port)).body, 'r1', 'the respawn runs the release generation 1 started on');

  // The upgrade through the link moves to r2.
  const upgraded = await master.client.upgrade({ target: path.join(deploy, 'current', 'app.js') });
  assert.equal(upgraded.target, path.join(deploy, 'r2', 'app.js'));
  assert.equal((await get(port)).body, 'r2');
});
