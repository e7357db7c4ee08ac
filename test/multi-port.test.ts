/**
 * An app with two servers: a new worker replaces an old one only once it
 * listens on every address the old workers serve, so neither port is ever
 * left without a worker during an upgrade.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, get, startLoad } from './helpers/net.js';
import path from 'node:path';
import { fixture, tempDir } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { rejection } from './helpers/grpc.js';
import * as proto from '../src/gen/liveswap/v1/liveswap.js';
import { waitFor } from './helpers/wait.js';

test('both ports keep answering through upgrades of a two-server app', async (t) => {
  const [port, port2] = [await freePort(), await freePort()];
  const master = await startMaster(fixture('two-ports.js'), {
    // Longer than the stability window, so only the readiness rule can protect port 2.
    env: { APP_PORT: String(port), APP_PORT2: String(port2), SECOND_PORT_DELAY_MS: '1000' },
  });
  t.after(() => master.stop());
  await waitFor('both servers of every worker', async () => {
    const s = await master.client.status();
    return s.workers.every((w) => w.listening.length === 2);
  });

  const load = startLoad(port2, { keepAlive: 2, close: 6 });
  await waitFor('load on the second port', async () => (await get(port2)).body === 'B');
  for (let i = 0; i < 3; i++) {
    const result = await master.client.upgrade({ target: fixture('two-ports.js') });
    for (const worker of result.workers) {
      assert.deepEqual(worker.listening.sort(), [`127.0.0.1:${port}`, `127.0.0.1:${port2}`].sort());
    }
  }
  const stats = await load.stop();
  assert.deepEqual(stats.errors, {}, 'the second port never refused or dropped a request');
  assert.ok(stats.ok > 50, `load was real: ${stats.ok}`);
  assert.equal((await get(port)).body, 'A');
});

test('a server the app closed is no longer required of the next release', async (t) => {
  const [port, port2] = [await freePort(), await freePort()];
  const master = await startMaster(fixture('temp-port.js'), { env: { APP_PORT: String(port), APP_PORT2: String(port2) } });
  t.after(() => master.stop());
  await waitFor('the helper port to be gone from every worker', async () => {
    const s = await master.client.status();
    return s.workers.every((w) => w.listening.length === 1 && w.listening[0] === `127.0.0.1:${port}`);
  });
  const result = await master.client.upgrade({ target: fixture('v2.js'), readyTimeoutMs: 3000 });
  assert.equal(result.generation, 2);
  assert.equal((await get(port)).body, 'v2');
});

test('a release that moves a port: refused in listening mode, allowed with first-listen', async (t) => {
  const port = await freePort();
  const sockets = tempDir();
  // One worker: its own debug socket (named after its worker id) looks like an address every old worker shares.
  const master = await startMaster(fixture('per-worker-port.js'), { forks: 1, env: { APP_PORT: String(port), APP_SOCKET_DIR: sockets } });
  t.after(() => master.stop());
  const refused = await rejection(master.client.upgrade({ target: fixture('per-worker-port.js'), readyTimeoutMs: 1500 }));
  assert.match(refused.message, new RegExp(`did not start listening on ${path.join(sockets, 'worker-1.sock')} \\(it listens on `));
  assert.equal((await get(port)).body, 'per-worker-port', 'the old worker still serves');

  const moved = await runCli(['-u', fixture('per-worker-port.js'), '--ready-mode', 'first-listen', ...master.via]);
  assert.equal(moved.code, 0, moved.stderr);
  const status = await master.client.status();
  assert.equal(status.readyMode, proto.ReadyMode.READY_MODE_FIRST_LISTEN);
  assert.equal((await get(port)).body, 'per-worker-port');
});

test('a rollback answers only once the old release serves every port again', async (t) => {
  const [port, port2] = [await freePort(), await freePort()];
  const master = await startMaster(fixture('two-ports.js'), {
    // Both new workers boot at once, so every old worker is draining when they crash in the stability window.
    env: { APP_PORT: String(port), APP_PORT2: String(port2), SECOND_PORT_DELAY_MS: '1000' },
    args: ['--max-surge', '2', '--stable-ms', '2000'],
  });
  t.after(() => master.stop());
  await waitFor('both servers of every worker', async () => (await master.client.status()).workers.every((w) => w.listening.length === 2));

  const failed = await rejection(master.client.upgrade({ target: fixture('two-ports-crash.js') }));
  assert.match(failed.message, /^upgrade rolled back: worker \d+ crashed: exited with code 1: Error: boom after opening the second port/);
  // Not a second later: the restored workers counted as ready only once they listened on both ports.
  assert.equal((await get(port2)).body, 'B');
  assert.equal((await get(port)).body, 'A');
  const status = await master.client.status();
  assert.equal(status.generation, 1);
  for (const worker of status.workers) {
    assert.equal(worker.generation, 1);
    assert.deepEqual(worker.listening.sort(), [`127.0.0.1:${port}`, `127.0.0.1:${port2}`].sort());
  }
});
