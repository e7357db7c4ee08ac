/**
 * An app with two servers: a new worker replaces an old one only once it
 * listens on every address the old workers serve, so neither port is ever
 * left without a worker during an upgrade.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, get, startLoad } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
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
