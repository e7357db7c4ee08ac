/**
 * The OS refusing a fork, with real workers and a real control service. A
 * launcher around the real ClusterLauncher refuses the launches a test picks,
 * in the two ways the OS does: cluster.fork throws (ENOMEM), or cluster.fork
 * returns and the spawn fails a moment later (EAGAIN; here a real ENOENT,
 * with the node binary missing for that one fork, takes the same path in
 * Node). Each operation fails on its own terms, with a precise status, and
 * the master goes on. (Every interleaving on fake processes: state-machine.)
 */
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect } from '../src/client/index.js';
import { runMaster } from '../src/run.js';
import { ClusterLauncher, type LaunchSpec, type WorkerProcess } from '../src/supervisor/launcher.js';
import { expectGrpcError } from './helpers/grpc.js';
import { freePort, get, startLoad } from './helpers/net.js';
import { fixture, tempDir } from './helpers/paths.js';
import { expectGone, waitFor } from './helpers/wait.js';

type Refusal = 'fork-throws' | 'spawn-fails' | undefined;

/** The real launcher (no spares: every launch forks), but for the launches `refuse` picks, counted from 1. */
class RefusingLauncher extends ClusterLauncher {
  refuse: (attempt: number) => Refusal = () => undefined;
  private launches = 0;

  constructor() {
    super(() => 0);
  }

  override launch(spec: LaunchSpec): WorkerProcess {
    const refusal = this.refuse(++this.launches);
    if (refusal === 'fork-throws') throw Object.assign(new Error('spawn ENOMEM'), { code: 'ENOMEM', syscall: 'spawn' });
    if (refusal !== 'spawn-fails') return super.launch(spec);
    const node = process.execPath;
    process.execPath = path.join(tempDir(), 'no-such-node');
    try {
      return super.launch(spec);
    } finally {
      process.execPath = node;
    }
  }
}

/** A master in this process on a unix socket, with its client; stopped, and every worker checked gone, after the test. */
async function masterWith(t: TestContext, launcher: RefusingLauncher, target?: string) {
  const appPort = await freePort();
  process.env.APP_PORT = String(appPort); // the workers inherit it
  const socket = path.join(tempDir(), 'control.sock');
  const pids = new Set<number>();
  const running = await runMaster({
    ...(target && { target }),
    forks: 2,
    maxSurge: 2,
    control: { socket },
    launcher,
    log: { level: 'silent' },
    workerOutput: 'ignore',
  });
  const { master } = running;
  for (const worker of master.status().workers) pids.add(worker.pid);
  master.on('transition', ({ worker }) => worker.pid > 0 && pids.add(worker.pid));
  const client = connect({ socket });
  t.after(async () => {
    client.close();
    await master.die();
    await running.stopped;
    await expectGone([...pids]);
  });
  return { master, client, appPort };
}

test('Start: a fork the OS refuses is RESOURCE_EXHAUSTED, leaves nothing running, and Start works again', async (t) => {
  const launcher = new RefusingLauncher();
  launcher.refuse = (attempt) => (attempt === 2 ? 'fork-throws' : undefined);
  const { client, appPort } = await masterWith(t, launcher);

  await expectGrpcError(client.start({ target: fixture('v1.js') }), status.RESOURCE_EXHAUSTED, /^start failed: could not fork a worker: spawn ENOMEM$/);
  const after = await client.status();
  assert.deepEqual(after.workers, [], 'the worker forked before the refusal was stopped');
  assert.equal(after.target, '', 'no release is current');

  const started = await client.start({ target: fixture('v1.js') });
  assert.equal(started.workers.length, 2);
  assert.equal((await get(appPort)).body, 'v1');
});

test('Upgrade: a fork that throws, or a spawn that fails after fork returned, rolls back while v1 serves', async (t) => {
  const launcher = new RefusingLauncher();
  // 1-2: the start. 3-4: the first upgrade's new workers. 5-6: the second's.
  launcher.refuse = (attempt) => (attempt === 4 ? 'fork-throws' : attempt === 6 ? 'spawn-fails' : undefined);
  const { client, appPort } = await masterWith(t, launcher, fixture('v1.js'));
  const load = startLoad(appPort, { keepAlive: 2, close: 2 });

  await expectGrpcError(client.upgrade({ target: fixture('v2.js') }), status.FAILED_PRECONDITION, /^upgrade rolled back: could not fork a worker: spawn ENOMEM$/);
  await expectGrpcError(
    client.upgrade({ target: fixture('v2.js') }),
    status.FAILED_PRECONDITION,
    /^upgrade rolled back: worker \d+ could not be forked: spawn \S+no-such-node ENOENT$/,
  );
  const stats = await load.stop();
  assert.deepEqual(stats.errors, {}, 'no request failed');
  assert.ok(stats.bodies.v1! > 0, 'v1 answered throughout');
  const after = await client.status();
  assert.equal(after.generation, 1);
  assert.deepEqual(after.workers.map((w) => w.generation), [1, 1]);

  const upgraded = await client.upgrade({ target: fixture('v2.js') });
  assert.equal(upgraded.workers.length, 2);
  assert.equal((await get(appPort)).body, 'v2');
});

test('Kill: a fork the OS refuses is RESOURCE_EXHAUSTED, and the master forks the missing worker with the crash backoff', async (t) => {
  const launcher = new RefusingLauncher();
  // 1-2: the start. 3-4: the kill's replacements. 5: the refill after the kill. 6: its retry.
  launcher.refuse = (attempt) => (attempt === 4 || attempt === 5 ? 'fork-throws' : undefined);
  const { client, appPort } = await masterWith(t, launcher, fixture('v1.js'));

  await expectGrpcError(client.kill(), status.RESOURCE_EXHAUSTED, /^killed 2 worker\(s\) but the respawn failed: could not fork a worker: spawn ENOMEM$/);
  const whole = await waitFor('the pool to be whole again', async () => {
    const s = await client.status();
    return s.counts!.ready === 2 ? s : undefined;
  });
  assert.deepEqual(whole.workers.map((w) => w.generation), [1, 1]);
  assert.equal((await get(appPort)).body, 'v1');
});
