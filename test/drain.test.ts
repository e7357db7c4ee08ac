/**
 * The drain a worker goes through when it is replaced: requests in flight
 * finish on the old version, keep-alive clients are told `Connection: close`
 * instead of having their socket reset, and every later request is served
 * by the new version.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { freePort, get, startLoad } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

/** One worker of an app that keeps idle keep-alive sockets for 65 s, with 20 s to drain. */
async function longKeepAliveMaster(t: TestContext) {
  const port = await freePort();
  const master = await startMaster(fixture('long-keepalive.js'), {
    forks: 1,
    env: { APP_PORT: String(port) },
    args: ['--drain-timeout', '20000'],
  });
  t.after(() => master.stop());
  return { master, port };
}

test('in-flight slow requests complete on the old version through an upgrade', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const slow = Array.from({ length: 8 }, () => get(port, '/slow?ms=1500'));
  // Both workers hold some of the slow requests before the upgrade starts.
  await waitFor('slow requests to be in flight', async () => (await get(port)).status === 200);
  const upgrade = await master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(upgrade.killedAtDrainTimeout, 0);
  const replies = await Promise.all(slow);
  assert.deepEqual(
    replies.map((r) => r.body),
    Array(8).fill('v1'),
  );
  // The upgrade waited for them: it returns only once the old workers exited.
  assert.ok(upgrade.durationMs >= 1000, `upgrade took ${upgrade.durationMs} ms`);
  for (let i = 0; i < 6; i++) assert.equal((await get(port)).body, 'v2');
});

test('a keep-alive socket on a draining worker gets Connection: close, never a reset', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const first = await get(port, '/', agent);
  assert.equal(first.headers.connection, 'keep-alive');
  // A request in flight on that very socket when the drain begins. The drain of the one old
  // worker starts after the new one is ready and stable (500 ms): 3 s covers a loaded machine.
  const inFlight = get(port, '/slow?ms=3000', agent);
  await waitFor('the slow request to reach the worker', () => agent.sockets[`127.0.0.1:${port}:`]?.length === 1);
  const upgrading = master.client.upgrade({ target: fixture('v2.js') });
  const reply = await inFlight;
  assert.equal(reply.body, 'v1');
  assert.equal(reply.headers.connection, 'close', 'the old worker told the client the socket is closing');
  await upgrading;
  const next = await get(port, '/', agent);
  assert.equal(next.body, 'v2');
});

test('zero failed requests through back-to-back upgrades, keep-alive and close clients', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const load = startLoad(port, { keepAlive: 8, close: 4 });
  await waitFor('load to flow', async () => (await get(port)).status === 200);
  for (const version of ['v2', 'v3', 'v1']) {
    await master.client.upgrade({ target: fixture(`${version}.js`) });
  }
  const stats = await load.stop();
  assert.deepEqual(stats.errors, {});
  assert.equal(stats.failed, 0);
  for (const version of ['v1', 'v2', 'v3']) assert.ok(stats.bodies[version]! > 0, `${version} served`);
  assert.ok(stats.ok > 100, `load was real: ${stats.ok} requests`);
});

test('an idle keep-alive socket is closed after 1 s of idleness, not at the app\'s 65 s keepAliveTimeout', async (t) => {
  const { master, port } = await longKeepAliveMaster(t);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  assert.equal((await get(port, '/', agent)).body, 'long-keepalive');
  // The socket now idles in the agent's pool, on the old worker.
  const upgrade = await master.client.upgrade({ target: fixture('v2.js') });
  // On its own: before the 20 s drain timeout, so well before the app's 65 s keepAliveTimeout.
  assert.equal(upgrade.killedAtDrainTimeout, 0, 'the old worker drained on its own');
  // The client noticed the close and simply opens a new connection.
  assert.equal((await get(port, '/', agent)).body, 'v2');
});

test('an upgraded (WebSocket-like) socket is left to the app and the drain timeout', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('long-keepalive.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const socket = net.connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk) => (received += chunk));
  socket.on('error', () => {});
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  await waitFor('the 101 answer', () => received.includes('101 Switching Protocols'));

  const upgrading = master.client.upgrade({ target: fixture('v2.js'), drainTimeoutMs: 2500 });
  await waitFor('the old worker to drain', async () => (await master.client.status()).counts!.draining === 1);
  // Well past the 1 s idle grace, the upgraded socket still echoes.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  received = '';
  socket.write('still here?');
  await waitFor('the echo', () => received === 'still here?');
  const result = await upgrading;
  assert.equal(result.killedAtDrainTimeout, 1, 'it was closed by the drain timeout, not by the idle rule');
});

test('an idle client that never closes its side does not hold the old worker', async (t) => {
  const { master, port } = await longKeepAliveMaster(t);
  // One request, then silence, with half-open allowed: only the server can end this.
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.after(() => socket.destroy());
  socket.on('error', () => {});
  socket.resume();
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((resolve) => socket.once('data', resolve));
  const upgrade = await master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(upgrade.killedAtDrainTimeout, 0, 'the old worker drained on its own, before the 20 s drain timeout');
});
