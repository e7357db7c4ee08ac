/**
 * Faults in the middle of an operation, with real processes: an old worker
 * that never finishes its drain, Die during an upgrade, a client that gives
 * up (deadline) or disappears (SIGKILL) mid-upgrade, and a pre-upgrade hook
 * that crashes, exits, throws later, hangs or SIGKILLs itself. Every one ends
 * with the pool on one generation, the right status for the caller, and no
 * process left behind. (A new worker crashing mid-upgrade: rollback.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { connect, WorkerState, type GetStatusResponse } from '../src/client/index.js';
import { expectGrpcError, poolState } from './helpers/grpc.js';
import { freePort, get } from './helpers/net.js';
import { CLI, fixture } from './helpers/paths.js';
import { startMaster, type MasterProcess } from './helpers/processes.js';
import { expectGone, waitFor, withDeadline } from './helpers/wait.js';

/** Waits until no operation runs, then checks every worker is ready and of one generation and target. */
async function settledOnOneVersion(master: MasterProcess): Promise<GetStatusResponse> {
  const s = await waitFor('the operation to finish and the pool to settle', async () => {
    const now = await master.client.status();
    return now.operation === '' && now.counts!.starting === 0 && now.counts!.draining === 0 ? now : undefined;
  }, { timeoutMs: 15_000 });
  assert.equal(s.workers.length, s.forks, 'the pool is at full size');
  for (const worker of s.workers) {
    assert.equal(worker.state, WorkerState.WORKER_STATE_READY);
    assert.equal(worker.generation, s.generation, `worker ${worker.id} is of generation ${worker.generation}, the pool of ${s.generation}: mixed versions`);
    assert.equal(worker.target, s.target);
  }
  return s;
}

test('an old worker that never finishes its drain is killed at the drain timeout, and the upgrade says so', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('ignores-drain.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const old = (await master.client.status()).workers.map((w) => w.pid);

  const result = await master.client.upgrade({ target: fixture('v2.js'), drainTimeoutMs: 700 });
  assert.equal(result.killedAtDrainTimeout, 2);
  await expectGone(old);
  assert.equal(master.stderr().match(/draining → exited: killed at the drain timeout/g)?.length, 2);
  assert.match(master.stdout(), /drain noticed; keeping my timer anyway/);
  const s = await settledOnOneVersion(master);
  assert.equal(s.generation, 2);
  assert.equal((await get(port)).body, 'v2');
});

test('Die during an upgrade: the upgrade fails UNAVAILABLE, then every worker is drained and the master exits 0', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port), BOOT_MS: '3000' } });
  t.after(() => master.stop());
  const upgrade = master.client.upgrade({ target: fixture('slow-boot.js') });
  upgrade.catch(() => {});
  await waitFor('a new worker to be starting', () => /gen 2\) starting: forked/.test(master.stderr()));
  const inFlight = get(port, '/slow?ms=500&tag=die');
  await waitFor('the slow request to be in an old worker', () => master.stdout().includes('slow request die started'));

  const died = await master.client.die({ drainTimeoutMs: 5000 });
  await expectGrpcError(upgrade, status.UNAVAILABLE, /^upgrade cancelled: the master is shutting down$/);
  assert.equal((await inFlight).body, 'v1', 'the old workers were drained, not killed');
  // The two old workers drained; the new ones still starting (up to two: maxSurge is min(2, cores)
  // here) were stopped by the cancelled upgrade, and counted by Die too if they had not exited yet
  // when Die took stock.
  assert.equal(died.killed, 0, 'nobody was killed at the drain timeout');
  assert.ok(died.stopped >= 2 && died.stopped <= 4, `stopped ${died.stopped}`);
  assert.match(master.stderr(), /gen 2\) starting → exited: stopped \(was killed by SIGKILL\)/);
  assert.equal(await withDeadline('the master to exit', master.exited, 10_000), 0);
  await expectGone([master.pid, ...master.workerPids()]);
});

test('a client that hits its deadline, or is killed, mid-upgrade: the upgrade still completes, or rolls back, never half-done', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port), BOOT_MS: '700' } });
  t.after(() => master.stop());

  // 1. A deadline shorter than the upgrade: the caller gets DEADLINE_EXCEEDED, the master finishes the job.
  const hasty = connect({ socket: master.socket, deadlineMs: 400 });
  t.after(() => hasty.close());
  await expectGrpcError(hasty.upgrade({ target: fixture('slow-boot.js') }), status.DEADLINE_EXCEEDED, /deadline/i);
  const upgraded = await settledOnOneVersion(master);
  assert.equal(upgraded.generation, 2);
  assert.equal(upgraded.target, fixture('slow-boot.js'));
  assert.equal((await get(port)).body, 'slow-boot');

  // 2. The CLI running the upgrade is SIGKILLed half-way: the master finishes the job.
  const cli = spawn(process.execPath, [CLI, '-u', fixture('v2.js'), ...master.via], { stdio: 'ignore' });
  const cliExited = new Promise((resolve) => cli.once('exit', resolve));
  await waitFor('the CLI upgrade to be under way', () => /gen 3\) starting: forked/.test(master.stderr()));
  cli.kill('SIGKILL');
  await cliExited;
  const afterKill = await settledOnOneVersion(master);
  assert.equal(afterKill.generation, 3);
  assert.equal((await get(port)).body, 'v2');

  // 3. A deadline on an upgrade that rolls back: the rollback still completes in full.
  const rollback = hasty.upgrade({ target: fixture('never-listens.js'), readyTimeoutMs: 800 });
  await expectGrpcError(rollback, status.DEADLINE_EXCEEDED, /deadline/i);
  await waitFor('the rollback to be logged', () => /did not start listening on \S+ within 800 ms \(killed\)/.test(master.stderr()), { timeoutMs: 10_000 });
  const rolledBack = await settledOnOneVersion(master);
  assert.equal(rolledBack.generation, 3);
  assert.equal(rolledBack.target, fixture('v2.js'));
  assert.equal((await get(port)).body, 'v2');
});

test('a pre-upgrade hook that SIGKILLs itself, exits, throws later or hangs: a veto naming it, and nothing changed', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), {
    forks: 2,
    env: { APP_PORT: String(port) },
    // Room for the hook runner (a Node process) to start and misbehave on a loaded machine before the timeout.
    args: ['--pre-upgrade', fixture('hook-misbehaves.js'), '--hook-timeout', '3000'],
  });
  t.after(() => master.stop());
  const before = await master.client.status();

  for (const [mode, reason] of [
    ['sigkill', /^pre-upgrade hook was killed by SIGKILL without answering: hook running in mode sigkill$/],
    ['exit', /^pre-upgrade hook exited with code 1 without answering: hook running in mode exit$/],
    ['async-throw', /^pre-upgrade hook exited with code 1 without answering: Error: hook blew up later$/],
    ['hang', /^pre-upgrade hook did not answer within 3000 ms$/],
  ] as const) {
    const error = await expectGrpcError(
      master.client.upgrade({ target: fixture('v2.js'), hookData: { mode } }),
      status.FAILED_PRECONDITION,
      reason,
    );
    assert.ok(error.stderrTail.includes(`hook running in mode ${mode}`), `${mode}: the hook's stderr tail comes back`);
    assert.equal(poolState(await master.client.status()), poolState(before), `${mode}: nothing changed`);
  }
  assert.equal((await get(port)).body, 'v1');
  // The hook still allows when it answers: nothing was left locked.
  const allowed = await master.client.upgrade({ target: fixture('v2.js'), hookData: { mode: 'allow' } });
  assert.equal(allowed.generation, 2, 'a vetoed upgrade takes no generation number');
});
