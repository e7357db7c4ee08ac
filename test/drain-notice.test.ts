/**
 * The drain notification of the worker contract: an app with long-lived
 * responses (server-sent events here; WebSockets and long polls are the same)
 * learns it is being drained through `process.on('liveswap:drain')`, winds
 * down and lets the worker exit long before the drain timeout. An app that
 * does not listen is killed at the drain timeout, and the Upgrade result
 * counts it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { freePort } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor, withDeadline } from './helpers/wait.js';

/** An open event stream: everything received so far, and when it ended. */
function openEvents(port: number) {
  const stream = { text: '', endedAt: undefined as number | undefined, ended: undefined as unknown as Promise<void> };
  stream.ended = new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk) => (stream.text += chunk));
      const done = () => {
        stream.endedAt ??= Date.now();
        resolve();
      };
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', reject);
  });
  return stream;
}

async function sseMaster(t: TestContext, env: Record<string, string>, drainTimeoutMs: number) {
  const port = await freePort();
  const master = await startMaster(fixture('sse-app.js'), {
    forks: 1,
    env: { APP_PORT: String(port), ...env },
    args: ['--drain-timeout', String(drainTimeoutMs)],
  });
  t.after(() => master.stop());
  return { port, master };
}

test('an app that listens for liveswap:drain ends its streams and its worker exits before the drain timeout', async (t) => {
  const DRAIN_TIMEOUT_MS = 20_000;
  const { port, master } = await sseMaster(t, {}, DRAIN_TIMEOUT_MS);
  const streams = [openEvents(port), openEvents(port), openEvents(port)];
  await waitFor('the streams to tick', () => streams.every((s) => s.text.includes('data: tick')));

  const upgrade = await withDeadline('upgrade', master.client.upgrade({ target: fixture('sse-app.js') }), 3 * DRAIN_TIMEOUT_MS);
  await Promise.all(streams.map((s) => s.ended));

  assert.equal(upgrade.killedAtDrainTimeout, 0, 'the worker exited on its own, before the drain timeout');
  for (const stream of streams) assert.match(stream.text, /event: bye\ndata: reconnect\n\n$/, 'each stream got the goodbye event');
  // The notice carried the deadline: about the drain timeout away.
  const [, open, left] = /drain notice, (\d+) stream\(s\) open, (\d+) ms left/.exec(master.stdout())!;
  assert.equal(Number(open), 3);
  // (Not the 30 s default; half the timeout is a margin for a loaded machine, not a speed claim.)
  assert.ok(Number(left) > DRAIN_TIMEOUT_MS / 2 && Number(left) <= DRAIN_TIMEOUT_MS, `deadline ${left} ms away`);
  // The new worker serves new streams.
  const fresh = openEvents(port);
  await waitFor('a new stream on the new worker', () => fresh.text.includes('data: tick'));
});

test('an app that ignores the drain is killed at the drain timeout, and the upgrade says so', async (t) => {
  const DRAIN_TIMEOUT_MS = 1500;
  const { port, master } = await sseMaster(t, { IGNORE_DRAIN: '1' }, DRAIN_TIMEOUT_MS);
  const stream = openEvents(port);
  await waitFor('the stream to tick', () => stream.text.includes('data: tick'));
  const oldPid = (await master.client.status()).workers[0]!.pid;

  const began = Date.now();
  const upgrade = await withDeadline('upgrade', master.client.upgrade({ target: fixture('sse-app.js') }), 30_000);
  await withDeadline('the stream to end', stream.ended, 15_000);

  assert.equal(upgrade.killedAtDrainTimeout, 1);
  const streamLasted = stream.endedAt! - began;
  assert.ok(streamLasted >= DRAIN_TIMEOUT_MS - 100, `the stream ended after ${streamLasted} ms, before the drain timeout`);
  assert.doesNotMatch(stream.text, /event: bye/);
  assert.match(master.stderr(), new RegExp(`\\(pid ${oldPid}, gen 1\\) draining → exited: killed at the drain timeout`));
});
