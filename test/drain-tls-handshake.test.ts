/**
 * TLS connections still in their handshake when the drain starts (rule 6 of
 * src/worker/drain.ts). A relay between the client and the app holds back
 * the server's handshake messages until the old worker has started
 * draining: the worker has read the ClientHello and waits for the client's
 * Finished when its drain begins. Released, the handshake completes and the
 * request is served by the draining worker, over HTTP/1.1 or HTTP/2 as ALPN
 * chose; never released, the stalled handshake is closed after the grace
 * instead of holding the worker until the drain timeout.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { makeCerts } from './helpers/certs.js';
import { h2Client } from './helpers/h2.js';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor, withDeadline } from './helpers/wait.js';

const DRAIN_TIMEOUT_MS = 30_000;
const certs = makeCerts();
const ca = fs.readFileSync(certs.ca);

/**
 * A TCP relay on a free port to the app's port, for one connection. What the
 * client sends goes through at once; what the server sends waits for
 * release().
 */
async function holdingRelay(t: TestContext, appPort: number) {
  let held: Buffer[] | undefined = [];
  let client: net.Socket | undefined;
  let serverAnswered!: () => void;
  let serverClosed!: () => void;
  const answered = new Promise<void>((resolve) => (serverAnswered = resolve));
  const closed = new Promise<void>((resolve) => (serverClosed = resolve));
  const relay = net.createServer((socket) => {
    client = socket;
    const upstream = net.connect(appPort, '127.0.0.1');
    for (const side of [socket, upstream]) side.on('error', () => {});
    socket.on('data', (chunk) => upstream.write(chunk));
    socket.on('close', () => upstream.destroy());
    upstream.on('data', (chunk) => {
      serverAnswered();
      if (held) held.push(chunk);
      else socket.write(chunk);
    });
    upstream.on('close', () => {
      serverClosed();
      socket.destroy();
    });
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.after(() => {
    client?.destroy();
    relay.close();
  });
  return {
    port: (relay.address() as net.AddressInfo).port,
    /** The app has answered the client's first bytes: its handshake is under way. */
    answered,
    /** The app's side of the connection has closed. */
    closed,
    release() {
      for (const chunk of held!) client!.write(chunk);
      held = undefined;
    },
  };
}

/** One worker of a TLS app that prints `drain started`, with a relay in front of it. */
async function tlsApp(t: TestContext, app: string) {
  const port = await freePort();
  const master = await startMaster(fixture(app), {
    forks: 1,
    env: { APP_PORT: String(port), TLS_CERT: certs.serverCert, TLS_KEY: certs.serverKey, LOG_DRAIN: '1' },
    args: ['--drain-timeout', String(DRAIN_TIMEOUT_MS)],
  });
  t.after(() => master.stop());
  return { master, relay: await holdingRelay(t, port) };
}

function assertQuickUpgrade(upgrade: { durationMs: number; killedAtDrainTimeout: number }) {
  assert.equal(upgrade.killedAtDrainTimeout, 0);
  assert.ok(upgrade.durationMs < DRAIN_TIMEOUT_MS / 3, `the upgrade took ${upgrade.durationMs} ms: the drain waited for its timeout`);
}

for (const [protocol, app, v2] of [
  ['HTTP/1.1', 'https-v1.js', 'https-v2.js'],
  ['HTTP/2', 'h2/v1.js', 'h2/v2.js'],
] as const) {
  test(`a TLS handshake in progress when the drain starts completes, and its ${protocol} request is served`, async (t) => {
    const { master, relay } = await tlsApp(t, app);
    let answer: Promise<{ body: string; note: string }>;
    if (protocol === 'HTTP/1.1') {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      t.after(() => agent.destroy());
      answer = get(relay.port, '/', agent, 10_000, ca).then((reply) => ({ body: reply.body, note: `Connection: ${reply.headers.connection}` }));
    } else {
      const client = h2Client(`https://127.0.0.1:${relay.port}`, { ca });
      t.after(() => client.close());
      answer = client.get('/').then((body) => ({ body, note: `${client.counts.retried} retried` }));
    }
    await withDeadline('the app to answer the ClientHello', relay.answered, 10_000);
    const upgrading = master.client.upgrade({ target: fixture(v2) });
    await waitFor('the old worker to start draining', () => /\[worker \d+ g1\] drain started/.test(master.stdout()));
    relay.release();
    const reply = await answer;
    assert.equal(reply.body, 'v1', 'served by the draining worker that accepted the connection');
    // HTTP/1.1: the response says the socket is closing (rule 2); HTTP/2: the
    // stream was served, not refused (rule 5), so the client did not retry.
    assert.equal(reply.note, protocol === 'HTTP/1.1' ? 'Connection: close' : '0 retried');
    assertQuickUpgrade(await upgrading);
  });
}

test('a TLS handshake that stalls when the drain starts is closed after the grace, not held to the drain timeout', async (t) => {
  const { master, relay } = await tlsApp(t, 'https-v1.js');
  // The client waits for the server's handshake messages, which never come: it cannot send a request.
  const request = get(relay.port, '/', false, 20_000, ca).then(
    () => 'answered',
    (error: NodeJS.ErrnoException) => error.code ?? error.message,
  );
  await withDeadline('the app to answer the ClientHello', relay.answered, 10_000);
  const upgrade = await master.client.upgrade({ target: fixture('https-v2.js') });
  assertQuickUpgrade(upgrade);
  await withDeadline('the old worker to close the connection', relay.closed, 5000);
  assert.notEqual(await request, 'answered');
});
