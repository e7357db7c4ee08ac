/**
 * A master started without a target waits for Start (or Upgrade, which
 * starts it the same way); Start refuses to start twice.
 */
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rejection } from './helpers/grpc.js';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';


test('Start on an idle master; a second Start is FAILED_PRECONDITION', async (t) => {
  const port = await freePort();
  const master = await startMaster(undefined, { env: { APP_PORT: String(port) }, waitReady: false });
  t.after(() => master.stop());
  const idle = await master.client.status();
  assert.equal(idle.generation, 0);
  assert.equal(idle.target, '');
  assert.equal(idle.workers.length, 0);

  const noWorkers = await rejection(master.client.broadcast('anyone?'));
  assert.equal(noWorkers.code, status.FAILED_PRECONDITION);
  const nothingToKill = await rejection(master.client.kill());
  assert.equal(nothingToKill.code, status.FAILED_PRECONDITION);
  assert.match(nothingToKill.message, /nothing has been started yet/);

  const started = await master.client.start({ target: fixture('v1.js'), forks: 3 });
  assert.equal(started.generation, 1);
  assert.equal(started.workers.length, 3);
  assert.equal((await get(port)).body, 'v1');
  assert.equal((await master.client.status()).forks, 3);

  const again = await rejection(master.client.start({ target: fixture('v2.js') }));
  assert.equal(again.code, status.FAILED_PRECONDITION);
  assert.match(again.message, /^3 worker\(s\) already run .*v1\.js; use Upgrade to change the code$/);
  assert.equal((await get(port)).body, 'v1');
});

test('liveswap -u on an idle master starts the pool; a failed first release leaves it empty', async (t) => {
  const port = await freePort();
  const master = await startMaster(undefined, { env: { APP_PORT: String(port) }, waitReady: false });
  t.after(() => master.stop());

  const bad = await runCli(['-u', fixture('boot-throws.js'), ...master.via]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^liveswap: upgrade rolled back: worker \d+ exited with code 1 before listening/);
  const empty = await master.client.status();
  assert.equal(empty.workers.length, 0);
  assert.equal(empty.target, '');

  const result = await runCli(['-u', fixture('v2.js'), ...master.via]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /upgraded to generation 2 \(.*v2\.js\) in \d+ ms: 2 worker\(s\) ready/);
  assert.equal((await get(port)).body, 'v2');
});
