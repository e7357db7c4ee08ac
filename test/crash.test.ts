/**
 * A worker that dies without being asked to is respawned on the current
 * code, and the crash shows in the status.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { connect } from '../src/client/index.js';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { expectGone, waitFor, withDeadline } from './helpers/wait.js';

test('a worker killed from outside is respawned, and the crash is counted', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const before = await master.client.status();
  const victim = before.workers[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await expectGone([victim.pid]);

  const after = await waitFor('the pool to be back at 2 ready workers', async () => {
    const s = await master.client.status();
    return s.counts!.ready === 2 && s.workers.every((w) => w.pid !== victim.pid) ? s : undefined;
  });
  assert.equal(after.restarts, 1);
  assert.equal(after.generation, before.generation);
  const replacement = after.workers.find((w) => w.id !== before.workers[1]!.id)!;
  assert.equal(replacement.restarts, 1);
  assert.equal(replacement.target, fixture('v1.js'));
  assert.match(master.stderr(), new RegExp(`worker ${victim.id} crashed: was killed by SIGKILL; respawning in 100 ms`));
  assert.equal((await get(port)).body, 'v1');
});

test('SIGKILL of the master: every worker exits on its own, and the stale socket does not block the next master', async (t) => {
  const port = await freePort();
  const first = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  const pids = (await first.client.status()).workers.map((w) => w.pid);
  assert.equal(pids.length, 2);
  first.child.kill('SIGKILL');
  await first.exited;
  // No orphans: cluster workers leave when their IPC channel to the master closes.
  await expectGone(pids);
  await first.stop(); // checks every pid it ever logged, the master's included

  // The killed master left its socket file behind; a new master on the same path must still start.
  assert.ok(fs.statSync(first.socket).isSocket(), 'the stale socket file is there');
  const second = await startMaster(fixture('v2.js'), { env: { APP_PORT: String(port) }, socket: first.socket });
  t.after(() => second.stop());
  const client = connect({ socket: first.socket });
  t.after(() => client.close());
  assert.equal((await client.status()).masterPid, second.pid);
  assert.equal((await get(port)).body, 'v2');
});

test('a second master on a live socket is refused, and the first keeps serving', async (t) => {
  const port = await freePort();
  const first = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => first.stop());
  const result = await runCli(['-s', fixture('v2.js'), '--socket', first.socket]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`liveswap: another process is listening on ${first.socket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(is a liveswap master running\\?\\)\\n$`));
  assert.equal((await first.client.status()).masterPid, first.pid);
  assert.equal((await get(port)).body, 'v1');
});

test('SIGINT drains gracefully; a second SIGINT stops waiting', async (t) => {
  const port = await freePort();
  const graceful = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => graceful.stop());
  const inFlight = get(port, '/slow?ms=600');
  await waitFor('the slow request to be in flight', async () => (await get(port)).body === 'v1');
  graceful.child.kill('SIGINT');
  assert.equal((await inFlight).body, 'v1', 'the in-flight request finished during the drain');
  assert.equal(await withDeadline('graceful exit', graceful.exited, 10_000), 0);
  assert.match(graceful.stderr(), /SIGINT: stopping gracefully/);

  const port2 = await freePort();
  const stuck = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port2) }, args: ['--drain-timeout', '60000'] });
  t.after(() => stuck.stop());
  const endless = get(port2, '/slow?ms=60000').catch((error: Error) => error);
  await waitFor('the endless request to be in flight', async () => (await get(port2)).body === 'v1');
  stuck.child.kill('SIGINT');
  await waitFor('the worker to be draining', () => /ready → draining: master stopping/.test(stuck.stderr()));
  stuck.child.kill('SIGINT');
  // Well inside the 60 s drain timeout, and killed by the second SIGINT, not by that timeout.
  assert.equal(await withDeadline('forced exit', stuck.exited, 30_000), 0);
  assert.match(stuck.stderr(), /SIGINT again: killing the workers without waiting for them to drain/);
  assert.match(stuck.stderr(), /draining → exited: stopped \(was killed by SIGKILL\)/);
  assert.doesNotMatch(stuck.stderr(), /killed at the drain timeout/);
  assert.ok((await endless) instanceof Error, 'the endless request was cut by the forced stop');
});

test('a master whose stdout reader went away keeps running', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  master.child.stdout!.destroy(); // like `liveswap -s app.js | head -1` after head exits
  // The worker echoes every broadcast on its stdout, which the master copies to its broken pipe.
  for (let i = 0; i < 20; i++) await master.client.broadcast(`line ${i}`);
  assert.equal((await master.client.status()).counts!.ready, 1);
  assert.equal((await get(port)).body, 'v1');
});

test('a crash loop backs off, shows in the status, and an upgrade to fixed code ends it', async (t) => {
  const port = await freePort();
  // Ready, then dead 150 ms later, every time.
  const master = await startMaster(fixture('crash-after-ready.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  await waitFor('three crashes in a row', () => /crash 3 in a row/.test(master.stderr()), { timeoutMs: 15_000 });
  const delays = [...master.stderr().matchAll(/respawning in (\d+) ms \(crash (\d+) in a row\)/g)].map((m) => Number(m[1]));
  assert.deepEqual(delays.slice(0, 3), [100, 200, 400], 'the backoff doubles');
  const looping = await waitFor('a respawn pending', async () => {
    const s = await master.client.status();
    return s.respawnsPending === 1 ? s : undefined;
  });
  assert.ok(looping.restarts >= 2);
  await waitFor('--status to show the pending respawn', async () =>
    /\d+ crash restart\(s\), 1 respawn\(s\) pending/.test((await runCli(['--status', ...master.via])).stdout),
  );

  const fixed = await master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(fixed.workers.length, 1);
  const settled = await master.client.status();
  assert.equal(settled.respawnsPending, 0);
  assert.equal((await get(port)).body, 'v2');
  // No more crashes once the fixed code runs.
  const restartsAfterFix = settled.restarts;
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal((await master.client.status()).restarts, restartsAfterFix);
});
