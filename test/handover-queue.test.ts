/**
 * What an old master does with the connections it accepted but no worker
 * has taken yet, when a successor has taken its listening sockets over
 * (supervisor/listeners.ts, stopAccepting). Real node:cluster workers, with
 * this test's process as their primary: both workers hold their event loop
 * (as a long synchronous handler or a GC pause would) while clients connect,
 * so the primary's round-robin queue fills; then the primary stops accepting
 * and drains its workers, as a replaced master does. node:cluster resets
 * whatever is still queued when the last worker leaves: under load on a
 * 2-core machine, --upgrade-master lost about 15 requests that way in 1 run
 * of 5, while the old master waited only for a quiet 50 ms.
 */
import assert from 'node:assert/strict';
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { connectionsInFlight } from '../src/supervisor/held-connections.js';
import { recordClusterListeners, stopAccepting } from '../src/supervisor/listeners.js';
import { freePort, get } from './helpers/net.js';
import { fixture, tempDir } from './helpers/paths.js';
import { waitFor, withDeadline } from './helpers/wait.js';

const CLIENTS = 12;
/** How long the workers stay busy once the primary has stopped accepting (unless it finishes first). */
const BUSY_AFTER_STOP_MS = 300;

/** This process as the primary of `count` busy-worker.js workers on a free port, killed when the test ends. */
async function primaryOf(t: TestContext, count: number): Promise<{ port: number; workers: Worker[] }> {
  recordClusterListeners();
  const port = await freePort();
  cluster.setupPrimary({ exec: fixture('busy-worker.js'), silent: true });
  const workers: Worker[] = [];
  t.after(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
  for (let i = 0; i < count; i++) {
    const worker = cluster.fork({ APP_PORT: String(port) });
    workers.push(worker);
    await withDeadline('a worker to listen', new Promise((resolve) => worker.once('listening', resolve)), 10_000);
  }
  return { port, workers };
}

test('connections queued in the primary while every worker is busy are all served through stopAccepting and the drain', async (t) => {
  const { port, workers } = await primaryOf(t, 2);
  const dir = tempDir();
  const release = path.join(dir, 'release');
  const markers = workers.map((_, i) => path.join(dir, `busy-${i}`));
  workers.forEach((worker, i) => worker.send({ block: release, marker: markers[i] }));
  await waitFor('both workers to be busy', () => markers.every((marker) => fs.existsSync(marker)));

  const replies = Array.from({ length: CLIENTS }, () =>
    get(port, '/', false, 30_000).then(
      (reply) => `${reply.status}`,
      (error: Error) => `failed: ${error.message}`,
    ),
  );
  await waitFor(`the primary to accept all ${CLIENTS} connections`, () => connectionsInFlight() === CLIENTS);

  const stopped = stopAccepting();
  await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, BUSY_AFTER_STOP_MS))]);
  fs.writeFileSync(release, '');
  const left = await withDeadline('stopAccepting', stopped, 20_000);
  assert.equal(left, 0, 'every accepted connection was taken by a worker');

  // The drain: each worker closes its server and leaves.
  await withDeadline(
    'the workers to leave',
    Promise.all(workers.map((worker) => new Promise((resolve) => (worker.once('exit', resolve), worker.disconnect())))),
    20_000,
  );
  const outcomes = await Promise.all(replies);
  assert.deepEqual(
    outcomes.filter((outcome) => outcome !== '200'),
    [],
    `${outcomes.filter((outcome) => outcome === '200').length} of ${CLIENTS} answered`,
  );
  assert.equal(connectionsInFlight(), 0);
});

test('a worker that dies with a connection on its way to it: the connection is closed, not held', async (t) => {
  const { port, workers } = await primaryOf(t, 1);
  const worker = workers[0]!;
  const dir = tempDir();
  const release = path.join(dir, 'release');
  const marker = path.join(dir, 'busy');
  worker.send({ block: release, marker, exit: true });
  await waitFor('the worker to be busy', () => fs.existsSync(marker));
  const reply = get(port, '/', false, 30_000).then(
    (answer) => `${answer.status}`,
    (error: Error) => `failed: ${error.message}`,
  );
  await waitFor('the connection to be on its way to the worker', () => connectionsInFlight() === 1);
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  fs.writeFileSync(release, ''); // It exits before it reads the connection.
  await withDeadline('the worker to exit', exited, 20_000);
  // Before: the primary kept its copy, and the client waited for its own timeout.
  const outcome = await withDeadline('the client to see its connection end', reply, 10_000);
  assert.match(outcome, /^failed: (read ECONNRESET|socket hang up)$/);
  assert.equal(connectionsInFlight(), 0);
});
