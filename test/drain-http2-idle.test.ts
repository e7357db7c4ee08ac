/**
 * HTTP/2 sessions with no request when the drain starts (rules 4 and 5 of
 * src/worker/drain.ts): a session that has never sent a request gets the
 * idle grace, then GOAWAY, and is not held to the drain timeout, even when
 * its client ignores the GOAWAY; a request it sends within the grace is
 * served, not refused.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { freePort } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor, withDeadline } from './helpers/wait.js';

const DRAIN_TIMEOUT_MS = 30_000;
/** The client connection preface, then an empty SETTINGS frame (RFC 9113, 3.4). */
const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

/** One worker of the HTTP/2 app and a client session connected to it that has sent nothing. */
async function idleSession(t: TestContext, env: Record<string, string> = {}) {
  const port = await freePort();
  const master = await startMaster(fixture('h2/v1.js'), {
    forks: 1,
    env: { APP_PORT: String(port), ...env },
    args: ['--drain-timeout', String(DRAIN_TIMEOUT_MS)],
  });
  t.after(() => master.stop());
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  t.after(() => session.destroy());
  await withDeadline('the session to connect', once(session, 'remoteSettings'), 10_000);
  // The event's arguments: error code, last stream id, opaque data.
  const goaway = once(session, 'goaway').then(([code, lastStreamId]) => [code, lastStreamId]);
  const closed = once(session, 'close');
  return { master, port, session, goaway, closed };
}

test('a session that never sent a request gets GOAWAY after the grace; one whose client ignores it is destroyed', async (t) => {
  const { master, port, goaway, closed } = await idleSession(t);
  // A client that opens an HTTP/2 connection and then neither sends nor closes
  // anything, not even its side after the server's FIN (half-open allowed).
  const deaf = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.after(() => deaf.destroy());
  deaf.on('error', () => {});
  const deafEnded = once(deaf, 'end');
  deaf.write(PREFACE);
  await withDeadline("the server's SETTINGS to the silent client", once(deaf, 'data'), 10_000);

  const upgrade = await master.client.upgrade({ target: fixture('h2/v2.js') });
  t.diagnostic(`upgrade ${upgrade.durationMs} ms`);
  // The old worker exits only once every connection is closed: the silent
  // client never closes its side, so the worker destroyed the connection.
  assert.equal(upgrade.killedAtDrainTimeout, 0, 'neither session held the worker to the drain timeout');
  assert.ok(upgrade.durationMs < DRAIN_TIMEOUT_MS / 3, `the upgrade took ${upgrade.durationMs} ms`);
  assert.deepEqual(await goaway, [http2.constants.NGHTTP2_NO_ERROR, 0], 'a graceful GOAWAY: no stream was processed');
  await closed;
  await withDeadline('the GOAWAY and FIN to the silent client', deafEnded, 5000);
});

test('a request sent during the grace on a session that had sent none is served, then GOAWAY', async (t) => {
  const { master, session, goaway, closed } = await idleSession(t, { LOG_DRAIN: '1' });
  const upgrading = master.client.upgrade({ target: fixture('h2/v2.js') });
  await waitFor('the old worker to start draining', () => /\[worker \d+ g1\] drain started/.test(master.stdout()));
  const stream = session.request({ ':path': '/' });
  stream.setEncoding('utf8');
  let body = '';
  stream.on('data', (chunk) => (body += chunk));
  await withDeadline('the answer', once(stream, 'end'), 10_000);
  assert.equal(body, 'v1', 'served by the draining worker, not refused');
  assert.deepEqual(await goaway, [http2.constants.NGHTTP2_NO_ERROR, 1], 'GOAWAY came after the first stream, which it counts as processed');
  await closed;
  const upgrade = await upgrading;
  assert.equal(upgrade.killedAtDrainTimeout, 0);
});
