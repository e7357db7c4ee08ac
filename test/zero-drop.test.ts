/**
 * The zero-drop promise under real load, counted: 32 clients looping requests
 * and 8 slow requests in flight when the upgrade starts. Not one request may
 * fail, every slow request is answered by the version that accepted it, and
 * every request sent after the upgrade returned is answered by the new one.
 * Run once with keep-alive clients (one socket each, reused) and once with
 * connection-close clients (a new connection per request).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, get, startLoad } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

const CLIENTS = 32;
const SLOW = 8;
const SLOW_MS = 3000;

for (const mode of ['keep-alive', 'connection-close'] as const) {
  test(`${mode}: ${CLIENTS} clients and ${SLOW} in-flight slow requests through an upgrade, none fails`, async (t) => {
    const port = await freePort();
    const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
    t.after(() => master.stop());

    const load = startLoad(port, mode === 'keep-alive' ? { keepAlive: CLIENTS, close: 0 } : { keepAlive: 0, close: CLIENTS });
    await waitFor('load to flow', async () => (await get(port)).status === 200);

    const slowSentAt = Date.now();
    const slow = Array.from({ length: SLOW }, (_, i) => get(port, `/slow?ms=${SLOW_MS}&tag=${mode}-${i}`));
    // Every slow request has reached an old worker (the app logs it on arrival).
    await waitFor(`${SLOW} slow requests to be in a worker`, () => {
      const started = master.stdout().match(new RegExp(`slow request ${mode}-\\d+ started`, 'g'));
      return (started?.length ?? 0) === SLOW;
    });

    const upgrade = await master.client.upgrade({ target: fixture('v2.js') });
    const returnedAt = Date.now();
    const slowReplies = await Promise.all(slow);
    // Some traffic after the upgrade, to check who answers it.
    await waitFor('requests sent after the upgrade returned', () => {
      return load.peek().filter((r) => r.sentAt > returnedAt).length >= 200;
    });
    const stats = await load.stop();

    assert.deepEqual(stats.errors, {}, `failed requests: ${JSON.stringify(stats.errors)}`);
    assert.equal(stats.failed, 0);
    assert.ok(stats.ok > 500, `only ${stats.ok} requests were served`);
    assert.deepEqual(
      slowReplies.map((r) => [r.status, r.body]),
      Array.from({ length: SLOW }, () => [200, 'v1']),
      'every slow request completed on the version that accepted it',
    );
    assert.equal(upgrade.killedAtDrainTimeout, 0);
    // The RPC returns once the old workers have exited, so it waited for the slow requests: no
    // sooner than SLOW_MS after they were sent (they started later still; timers fire late, never
    // early, but for a few ms of clock rounding).
    assert.ok(returnedAt - slowSentAt >= SLOW_MS - 5, `the upgrade returned ${returnedAt - slowSentAt} ms after the ${SLOW_MS} ms requests were sent`);
    const later = stats.replies.filter((r) => r.sentAt > returnedAt);
    const stale = later.filter((r) => r.body !== 'v2');
    assert.equal(stale.length, 0, `${stale.length} of ${later.length} later requests were answered by ${[...new Set(stale.map((r) => r.body))]}`);
    assert.deepEqual(Object.keys(stats.bodies).sort(), ['v1', 'v2']);
  });
}
