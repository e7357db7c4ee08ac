/**
 * Signals to a real foreground master (`liveswap -s`): SIGTERM drains and
 * exits 0, SIGHUP reloads in place (one reload at a time; a master whose
 * terminal closes stops instead: terminal.test.ts), and SIGKILL leaves
 * no worker behind — not one busy in a long request, not one whose app
 * ignores the IPC disconnect, not one that left the cluster in a drain and
 * winds down on its own, nor the pre-upgrade hook process. (SIGINT, and the
 * stale socket a SIGKILLed master leaves: crash.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { hookRunnerPids } from './helpers/proc-tree.js';
import { expectGone, isAlive, waitFor, withDeadline } from './helpers/wait.js';

test('SIGTERM drains every worker, lets the in-flight request finish, and exits 0', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const pids = (await master.client.status()).workers.map((w) => w.pid);
  const inFlight = get(port, '/slow?ms=700');
  await waitFor('the app to answer', async () => (await get(port)).body === 'v1');
  master.child.kill('SIGTERM');
  assert.equal((await inFlight).body, 'v1', 'the in-flight request finished during the drain');
  assert.equal(await withDeadline('graceful exit', master.exited, 10_000), 0);
  assert.match(master.stderr(), /SIGTERM: stopping gracefully/);
  assert.equal(master.stderr().match(/ready → draining: master stopping/g)?.length, 2);
  await expectGone([master.pid, ...pids]);
});

test('SIGHUP reloads in place: new workers on the same target, generation + 1; a second SIGHUP meanwhile is ignored', async (t) => {
  const port = await freePort();
  // With no controlling terminal, as under systemd (ExecReload=kill -HUP $MAINPID).
  const master = await startMaster(fixture('slow-boot.js'), { forks: 2, env: { APP_PORT: String(port), BOOT_MS: '500' }, noTerminal: true });
  t.after(() => master.stop());
  const before = await master.client.status();
  assert.equal(before.generation, 1);

  master.child.kill('SIGHUP');
  await waitFor('the reload to begin', () => /SIGHUP: reloading/.test(master.stderr()));
  master.child.kill('SIGHUP');
  await waitFor('the second SIGHUP to be ignored', () => /SIGHUP ignored: upgrade in progress/.test(master.stderr()));
  await waitFor('the reload to finish', () => /SIGHUP reload done: generation 2 on 2 worker\(s\)/.test(master.stderr()), { timeoutMs: 15_000 });

  const after = await master.client.status();
  assert.equal(after.generation, 2, 'one reload, not two');
  assert.equal(after.target, before.target);
  assert.equal(after.operation, '');
  assert.equal(after.workers.length, 2);
  for (const worker of after.workers) {
    assert.equal(worker.generation, 2);
    assert.ok(!before.workers.some((w) => w.pid === worker.pid), 'every worker is new');
  }
  await expectGone(before.workers.map((w) => w.pid));
  assert.equal((await get(port)).body, 'slow-boot');
  assert.ok(isAlive(master.pid), 'the master itself did not restart');
  assert.equal(after.masterPid, before.masterPid);
});

test('SIGKILL of the master: busy, disconnect-ignoring and self-draining workers all exit', async (t) => {
  const port = await freePort();
  // Old workers that wind down on their own after a drain (and never finish), ...
  const master = await startMaster(fixture('ignores-drain.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const draining = (await master.client.status()).workers.map((w) => w.pid);
  // ... replaced by workers that ignore the IPC disconnect; the old ones keep draining (60 s drain timeout).
  const upgrade = master.client.upgrade({ target: fixture('ignores-disconnect.js'), drainTimeoutMs: 60_000 });
  upgrade.catch(() => {});
  await waitFor('both old workers to be draining on their own', () => master.stdout().match(/drain noticed/g)?.length === 2, { timeoutMs: 10_000 });
  const serving = (await master.client.status()).workers.filter((w) => !draining.includes(w.pid)).map((w) => w.pid);
  assert.equal(serving.length, 2);
  // A long request keeps a new worker busy.
  const busy = get(port, '/slow?ms=30000').catch((error: Error) => error);
  await waitFor('the app to answer', async () => (await get(port)).body === 'ignores-disconnect');
  // Once the old workers have left the cluster (their IPC channel closed), only their own guard can stop them.
  await waitFor('both old workers to leave the cluster', () => master.stdout().match(/left the cluster/g)?.length === 2, { timeoutMs: 10_000 });
  for (const pid of draining) assert.ok(isAlive(pid), `old worker ${pid} is still winding down`);

  master.child.kill('SIGKILL');
  await master.exited;
  const killedAt = Date.now();
  const goneAfter = new Map<number, number>();
  await waitFor('every worker to exit', () => {
    for (const pid of [...draining, ...serving]) if (!goneAfter.has(pid) && !isAlive(pid)) goneAfter.set(pid, Date.now() - killedAt);
    return goneAfter.size === 4;
  }, { timeoutMs: 15_000, intervalMs: 10 }).catch(() => expectGone([...draining, ...serving], 0));
  t.diagnostic(`gone after the master's SIGKILL: draining ${draining.map((p) => goneAfter.get(p))} ms, serving ${serving.map((p) => goneAfter.get(p))} ms`);
  assert.ok((await busy) instanceof Error, 'the long request died with its worker');
});

test('SIGKILL of the master while the pre-upgrade hook runs: the hook process and the workers exit too', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), {
    forks: 1,
    env: { APP_PORT: String(port) },
    args: ['--pre-upgrade', fixture('hook-hang.js'), '--hook-timeout', '60000'],
  });
  t.after(() => master.stop());
  const workers = (await master.client.status()).workers.map((w) => w.pid);
  master.client.upgrade({ target: fixture('v2.js') }).catch(() => {});
  const hook = await waitFor('the hook runner to be running', () => hookRunnerPids(master.pid)[0]);
  master.child.kill('SIGKILL');
  await master.exited;
  await expectGone([hook, ...workers]);
});
