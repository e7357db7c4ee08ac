/**
 * Unit tests of the master's state machine — start, rolling upgrade,
 * rollback, crash respawn with backoff, one operation at a time, kill, die —
 * on fake processes (test/helpers/fake-launcher.ts): no fork, no ports, so
 * the timings can be small and every interleaving is scripted.
 */
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test, type TestContext } from 'node:test';
import { LiveswapError } from '../src/common/errors.js';
import { createLogger, type Logger } from '../src/common/logger.js';
import { resolveMasterConfig, type MasterConfig } from '../src/common/config.js';
import { Master, type UpgradeReport } from '../src/supervisor/master.js';
import type { PoolTransition } from '../src/supervisor/pool.js';
import { defaultBehaviour, exitOnDrain, FakeLauncher, forkError, type Behaviour, type FakeProcess } from './helpers/fake-launcher.js';
import { fixture } from './helpers/paths.js';
import { waitFor, withDeadline } from './helpers/wait.js';

const V1 = fixture('v1.js');
const V2 = fixture('v2.js');
const V3 = fixture('v3.js');

const SMALL: Partial<MasterConfig> = {
  readyTimeoutMs: 200,
  // Well-behaved fakes exit 1 ms after the drain request; a drain timeout as
  // short as the ready timeout killed one when a loaded machine stalled this
  // process for 200 ms between the request and the fake's exit timer.
  drainTimeoutMs: 1000,
  stableMs: 20,
  backoffInitialMs: 10,
  // One new worker at a time unless a test says otherwise, so every
  // interleaving is scripted.
  maxSurge: 1,
};

/** Deadline for any single operation in these tests. */
const OP_DEADLINE_MS = 3000;

interface Rig {
  master: Master;
  launcher: FakeLauncher;
  /** Every log.warn message, in order. */
  warnings: string[];
  /** Dies, then checks that every fake process ever launched has exited. */
  finish(): Promise<void>;
}

function rig(t: TestContext, config: Partial<MasterConfig>, behave: Behaviour = defaultBehaviour): Rig {
  const launcher = new FakeLauncher(behave);
  const log: Logger = createLogger({ level: 'silent' });
  const warnings: string[] = [];
  const warn = log.warn.bind(log);
  log.warn = ((message: string, ...rest: unknown[]) => {
    warnings.push(message);
    return (warn as (...args: unknown[]) => unknown)(message, ...rest);
  }) as Logger['warn'];
  const master = new Master(resolveMasterConfig({ ...SMALL, ...config }), log, launcher);
  const finish = async () => {
    await withDeadline('die', master.die(), OP_DEADLINE_MS);
    const running = launcher.running().map((p) => `${p.id} (g${p.generation})`);
    assert.deepEqual(running, [], `fake processes still running after die: ${running.join(', ')}`);
  };
  // Safety net if the test failed half-way; die() is idempotent.
  t.after(() => master.die().then(() => undefined, () => undefined));
  return { master, launcher, warnings, finish };
}

/** The rejection of a promise that must reject within the deadline. */
async function rejection(what: string, promise: Promise<unknown>, timeoutMs = OP_DEADLINE_MS): Promise<LiveswapError> {
  const outcome = await withDeadline(
    what,
    promise.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    ),
    timeoutMs,
  );
  if (outcome.ok) assert.fail(`${what} resolved (${JSON.stringify(outcome.value)}) but should have rejected`);
  assert.ok(outcome.error instanceof LiveswapError, `${what}: expected a LiveswapError, got ${String(outcome.error)}`);
  return outcome.error;
}

/** Records every transition from now on. */
function record(master: Master): { events: PoolTransition[]; stop(): void } {
  const events: PoolTransition[] = [];
  const listener = (event: PoolTransition) => events.push(event);
  master.on('transition', listener);
  return { events, stop: () => master.off('transition', listener) };
}

function describe(event: PoolTransition): string {
  const { starting, ready, draining } = event.counts;
  return `#${event.sequence} worker ${event.worker.id} g${event.worker.generation} ${event.from ?? '-'} -> ${event.to} ` +
    `(starting ${starting}, ready ${ready}, draining ${draining})`;
}

function assertReadyNeverBelow(events: PoolTransition[], n: number): void {
  const low = events.filter((e) => e.counts.ready < n);
  assert.deepEqual(low.map(describe), [], `ready dropped below ${n}:\n${events.map(describe).join('\n')}`);
}

function assertLiveNeverAbove(events: PoolTransition[], max: number): void {
  const high = events.filter((e) => e.counts.starting + e.counts.ready > max);
  assert.deepEqual(high.map(describe), [], `more than ${max} live:\n${events.map(describe).join('\n')}`);
}

/** Checks status(): exactly n workers, all ready, all of `generation`. */
function assertPool(master: Master, n: number, generation: number, target: string): void {
  const s = master.status();
  assert.deepEqual(s.counts, { starting: 0, ready: n, draining: 0 });
  assert.equal(s.workers.length, n);
  assert.deepEqual(
    s.workers.map((w) => [w.state, w.generation, w.target]),
    Array.from({ length: n }, () => ['ready', generation, target]),
  );
  assert.equal(s.generation, generation);
  assert.equal(s.target, target);
  assert.equal(s.operation, '');
}

/** Generation-2 processes get their own script; everything else behaves. */
function forGeneration2(script: (proc: FakeProcess, nth: number) => void): Behaviour {
  let nth = 0;
  return (proc, spec, index) => {
    if (spec.generation === 2) script(proc, ++nth);
    else defaultBehaviour(proc, spec, index);
  };
}

// ---------------------------------------------------------------------------

test('broadcast names the workers it reached in ascending id order, whatever order they were handed out in', async (t) => {
  const { master, launcher, finish } = rig(t, { forks: 3 });
  launcher.idOf = (index) => [3, 1, 2][index]!;
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  assert.deepEqual(
    master.status().workers.map((w) => w.id),
    [3, 1, 2],
    'the pool keeps the order the launcher handed them out in',
  );
  const result = await master.broadcast('hello');
  assert.deepEqual(result, { delivered: 3, workerIds: [1, 2, 3] });
  for (const proc of launcher.processes) assert.deepEqual(proc.sent.at(-1), { liveswap: 'broadcast', value: 'hello' });
  await finish();
});

for (const n of [2, 4]) {
  test(`upgrade with forks ${n}: new worker ready before an old one drains, one at a time`, async (t) => {
    const { master, launcher, finish } = rig(t, { forks: n });
    const started = await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
    assert.equal(started.generation, 1);
    assertPool(master, n, 1, V1);

    const rec = record(master);
    const result = await withDeadline('upgrade', master.upgrade(V2), OP_DEADLINE_MS);
    rec.stop();
    const { events } = rec;
    const trace = events.map(describe).join('\n');

    // The invariant, at every single transition.
    assertReadyNeverBelow(events, n);
    assertLiveNeverAbove(events, n + 1);

    // The order: [new starts, new ready, oldest old drains] × n, nothing interleaved.
    const moves = events.filter((e) => e.to !== 'exited').map((e) => `${e.to} g${e.worker.generation}`);
    assert.deepEqual(
      moves,
      Array.from({ length: n }, () => ['starting g2', 'ready g2', 'draining g1']).flat(),
      trace,
    );
    // Old workers retire oldest first; new ones are the next ids.
    const old = launcher.ofGeneration(1);
    const fresh = launcher.ofGeneration(2);
    assert.deepEqual(
      events.filter((e) => e.to === 'draining').map((e) => e.worker.id),
      old.map((p) => p.id),
    );
    assert.equal(fresh.length, n);
    // Each old one was drained with the configured timeout and exited cleanly, before upgrade resolved.
    for (const p of old) {
      assert.deepEqual(p.sent, [{ liveswap: 'drain', timeoutMs: 1000 }]);
      assert.deepEqual(p.signals, []);
      assert.equal(p.exited, true);
      assert.equal(p.exitCode, 0);
    }
    assert.deepEqual(
      events.filter((e) => e.to === 'exited').map((e) => [e.worker.generation, e.from, e.worker.reason]),
      Array.from({ length: n }, () => [1, 'draining', 'drained']),
    );

    assert.equal(result.generation, 2);
    assert.equal(result.target, V2);
    assert.equal(result.killedAtDrainTimeout, 0);
    assert.deepEqual(result.workers.map((w) => w.id), fresh.map((p) => p.id));
    assertPool(master, n, 2, V2);
    await finish();
  });
}

test('upgrade: an old worker that ignores the drain request is killed at the drain timeout', async (t) => {
  const n = 2;
  const { master, launcher, finish } = rig(t, { forks: n }, (proc, spec, index) => {
    if (spec.generation === 1) proc.after(0, () => proc.listen()); // never exits on drain
    else defaultBehaviour(proc, spec, index);
  });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);

  const rec = record(master);
  const began = performance.now();
  const result = await withDeadline('upgrade', master.upgrade(V2), OP_DEADLINE_MS);
  const tookMs = performance.now() - began;
  rec.stop();

  assert.equal(result.killedAtDrainTimeout, n);
  assert.ok(tookMs >= 990, `upgrade resolved after ${tookMs} ms, before the 1000 ms drain timeout`);
  for (const p of launcher.ofGeneration(1)) {
    assert.equal(p.drainRequested, true);
    assert.deepEqual(p.signals, ['SIGKILL']);
    assert.equal(p.exited, true);
  }
  assert.deepEqual(
    rec.events.filter((e) => e.to === 'exited').map((e) => [e.worker.generation, e.from, e.worker.reason]),
    Array.from({ length: n }, () => [1, 'draining', 'killed at the drain timeout']),
  );
  assertReadyNeverBelow(rec.events, n);
  assertLiveNeverAbove(rec.events, n + 1);
  assertPool(master, n, 2, V2);
  await finish();
});

test('rollback when the second new worker exits with code 1 before listening', async (t) => {
  const n = 2;
  const CAUSE = "Error: Cannot find module 'x'";
  let culprit: FakeProcess | undefined;
  const { master, launcher, finish } = rig(
    t,
    { forks: n },
    forGeneration2((proc, nth) => {
      if (nth !== 2) return defaultBehaviour(proc, proc.spec, 0);
      culprit = proc;
      proc.after(0, () => {
        proc.stderr('node:internal/modules/cjs/loader:1228', '  throw err;', '  ^', '', CAUSE, '    at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15)', '', 'Node.js v20.20.2');
        proc.exit(1);
      });
    }),
  );
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  const oldIds = launcher.processes.map((p) => p.id);

  const rec = record(master);
  const error = await rejection('upgrade', master.upgrade(V2));
  rec.stop();

  assert.equal(error.code, status.FAILED_PRECONDITION);
  assert.ok(culprit);
  assert.ok(error.message.startsWith('upgrade rolled back: worker'), error.message);
  assert.equal(error.message, `upgrade rolled back: worker ${culprit.id} exited with code 1 before listening: ${CAUSE}`);
  assert.ok(error.stderrTail.includes(CAUSE), `stderrTail: ${JSON.stringify(error.stderrTail)}`);

  // Never fewer than n ready, rollback included.
  assertReadyNeverBelow(rec.events, n);

  // Back to n ready workers of the old release; the release did not change.
  assertPool(master, n, 1, V1);
  // One old worker had been replaced before the failure, so one old-generation replacement was forked.
  const survivors = master.status().workers.map((w) => w.id);
  assert.equal(survivors.filter((id) => oldIds.includes(id)).length, n - 1);
  // Every new-generation process is gone; the one that was ready was drained.
  const fresh = launcher.ofGeneration(2);
  assert.equal(fresh.length, 2);
  assert.ok(fresh.every((p) => p.exited));
  assert.equal(fresh[0]!.drainRequested, true);
  assert.equal(fresh[0]!.exitCode, 0);

  // The master is usable again, and the rolled-back generation number is not reused.
  launcher.behave = defaultBehaviour;
  const retry = await withDeadline('second upgrade', master.upgrade(V2), OP_DEADLINE_MS);
  assert.equal(retry.generation, 3);
  assertPool(master, n, 3, V2);
  await finish();
});

test('a rollback that cannot restore the old release keeps serving, then retires the new workers once crash respawns bring it back', async (t) => {
  const n = 2;
  let newWorkers = 0;
  let oldRestores = 0;
  const { master, launcher, finish } = rig(t, { forks: n });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  launcher.behave = (proc, spec, index) => {
    if (spec.generation === 2 && ++newWorkers === 2) {
      proc.after(0, () => proc.exit(1)); // the second new worker fails: roll back
    } else if (spec.generation === 1 && ++oldRestores <= 2) {
      // Restoring v1 fails too: in the rollback, and again when the master refills
      // the pool after it; the crash respawn that follows succeeds.
      proc.after(0, () => proc.exit(1));
    } else {
      defaultBehaviour(proc, spec, index);
    }
  };

  const rec = record(master);
  const error = await rejection('upgrade', master.upgrade(V2));
  assert.equal(error.code, status.FAILED_PRECONDITION);
  assert.match(error.message, /^upgrade rolled back: worker \d+ exited with code 1 before listening; restoring generation 1 failed too: worker \d+ exited with code 1 before listening/);

  // Nothing was left without service: the ready new worker kept serving until v1 was back at full strength.
  await waitFor('the pool to be back on v1 alone', () => {
    const s = master.status();
    return s.counts.ready === n && s.counts.starting === 0 && s.counts.draining === 0 && s.workers.every((w) => w.generation === 1);
  }, { timeoutMs: OP_DEADLINE_MS });
  rec.stop();
  assertReadyNeverBelow(rec.events, n);
  assertPool(master, n, 1, V1);
  assert.ok(launcher.ofGeneration(2).every((p) => p.exited));
  await finish();
});

test('a new worker that crashes after the upgrade committed is respawned while the old one still drains', async (t) => {
  const n = 1;
  let newWorkers = 0;
  const { master, launcher, finish } = rig(t, { forks: n, drainTimeoutMs: 2000 }, (proc, spec) => {
    if (spec.generation === 1) {
      proc.after(0, () => proc.listen());
      exitOnDrain(proc, 600); // an old worker with a long request still to finish
    } else if (++newWorkers === 1) {
      exitOnDrain(proc);
      // Listens, passes the 20 ms stability window, then dies while the old worker drains.
      proc.after(0, () => {
        proc.listen();
        proc.after(100, () => proc.exit(1));
      });
    } else {
      defaultBehaviour(proc, spec, 0);
    }
  });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  const result = await withDeadline('upgrade', master.upgrade(V2), OP_DEADLINE_MS);
  assert.equal(result.generation, 2);
  // The respawn came while the upgrade was still waiting for the old worker, not after it.
  const respawn = launcher.ofGeneration(2)[1];
  assert.ok(respawn, 'the crashed new worker was respawned');
  const oldWorker = launcher.ofGeneration(1)[0]!;
  assert.ok(respawn.launchedAt < oldWorker.exitedAt!, 'respawned before the old worker had finished draining');
  await waitFor('the pool to be whole', () => master.status().counts.ready === n, { timeoutMs: OP_DEADLINE_MS });
  assertPool(master, n, 2, V2);
  await finish();
});

test('rollback when a new worker never starts listening (ready timeout)', async (t) => {
  const n = 2;
  const { master, launcher, finish } = rig(
    t,
    { forks: n },
    forGeneration2((proc) => exitOnDrain(proc)), // never listens
  );
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  const oldIds = launcher.processes.map((p) => p.id);

  const rec = record(master);
  const began = performance.now();
  const error = await rejection('upgrade', master.upgrade(V2));
  const tookMs = performance.now() - began;
  rec.stop();

  assert.equal(error.code, status.FAILED_PRECONDITION);
  const fresh = launcher.ofGeneration(2);
  assert.equal(fresh.length, 1, 'no second new worker after the first one failed');
  assert.equal(
    error.message,
    `upgrade rolled back: worker ${fresh[0]!.id} did not start listening on 127.0.0.1:1 within 200 ms (killed)`,
  );
  // Slack: the ready timer counts from the event loop's cached clock, which can lag performance.now().
  assert.ok(tookMs >= 190, `rolled back after ${tookMs} ms, before the 200 ms ready timeout`);
  assert.deepEqual(fresh[0]!.signals, ['SIGKILL']);
  assert.equal(fresh[0]!.exited, true);

  assertReadyNeverBelow(rec.events, n);
  assertPool(master, n, 1, V1);
  // Nothing had been drained yet: the very same old workers still serve.
  assert.deepEqual(master.status().workers.map((w) => w.id), oldIds);
  assert.ok(launcher.ofGeneration(1).every((p) => !p.drainRequested));
  await finish();
});

for (const cutover of ['ready', 'stable'] as const) {
  test(`cutover ${cutover}: rollback when a new worker crashes inside the stable window`, async (t) => {
    const n = 2;
    const CAUSE = 'TypeError: Cannot read properties of undefined (reading "db")';
    let culprit: FakeProcess | undefined;
    const { master, launcher, finish } = rig(
      t,
      { forks: n, stableMs: 200, cutover },
      forGeneration2((proc, nth) => {
        if (nth !== n) return defaultBehaviour(proc, proc.spec, 0);
        // The last new worker: ready, then dies 30 ms later — well inside the 200 ms window.
        culprit = proc;
        exitOnDrain(proc);
        proc.after(0, () => {
          proc.listen();
          proc.after(30, () => {
            proc.stderr(CAUSE);
            proc.exit(1);
          });
        });
      }),
    );
    await withDeadline('start', master.start(V1), OP_DEADLINE_MS);

    const rec = record(master);
    const error = await rejection('upgrade', master.upgrade(V2));
    rec.stop();

    assert.ok(culprit);
    assert.equal(error.code, status.FAILED_PRECONDITION);
    assert.match(
      error.message,
      new RegExp(`^upgrade rolled back: worker ${culprit.id} crashed: exited with code 1: .*\\((\\d+) ms after it became ready\\)$`),
    );
    assert.ok(error.message.includes(CAUSE), error.message);
    assert.ok(error.stderrTail.includes(CAUSE));
    const uptime = Number(/\((\d+) ms after it became ready\)/.exec(error.message)![1]);
    assert.ok(uptime >= 25, `uptime ${uptime}`);

    // Every new worker had become ready: this is the stable-window check, not the one-by-one loop.
    const fresh = launcher.ofGeneration(2);
    assert.equal(fresh.length, n);
    assert.equal(rec.events.filter((e) => e.to === 'ready' && e.worker.generation === 2).length, n);
    const old = launcher.ofGeneration(1);
    assert.ok(old.slice(0, n - 1).every((p) => p.drainRequested));
    if (cutover === 'stable') {
      // The last old worker kept serving through the window and still serves.
      assert.equal(old[n - 1]!.drainRequested, false, 'the last old worker was never drained');
      assert.equal(old[n - 1]!.exited, false);
    } else {
      // Every old worker was drained as soon as its replacement was ready.
      assert.equal(old[n - 1]!.drainRequested, true);
      const lastNewReady = rec.events.filter((e) => e.to === 'ready' && e.worker.generation === 2).at(-1)!.sequence;
      const lastOldDrained = rec.events.find((e) => e.to === 'draining' && e.worker.id === old[n - 1]!.id)!.sequence;
      assert.ok(lastOldDrained > lastNewReady, 'drained only after its replacement was ready');
    }

    // Restored: n ready workers of the old release, new ones all gone, release unchanged.
    assertPool(master, n, 1, V1);
    assert.ok(fresh.every((p) => p.exited));
    assert.equal(fresh[0]!.drainRequested, true, 'the surviving new worker is drained, not left running');
    // The old release was re-forked only after the crash, and the survivor drained only once it was back.
    const crashSeq = rec.events.find((e) => e.to === 'exited' && e.worker.id === culprit!.id)!.sequence;
    const restored = rec.events.filter((e) => e.to === 'ready' && e.worker.generation === 1);
    assert.equal(restored.length, cutover === 'stable' ? n - 1 : n, 'only the drained old workers needed replacing');
    assert.ok(restored.every((e) => e.sequence > crashSeq));
    const survivorDrained = rec.events.find((e) => e.to === 'draining' && e.worker.id === fresh[0]!.id)!.sequence;
    assert.ok(restored.every((e) => e.sequence < survivorDrained), 'the new survivor served until the old release was back');
    // Some version was ready at every step after the crash.
    assert.ok(rec.events.every((e) => e.counts.ready >= 1), rec.events.map(describe).join('\n'));
    await finish();
  });
}

test('rollback: restored workers must listen on every address the old release served when the upgrade began', async (t) => {
  // In the default 'ready' cutover every old worker is draining by the time a
  // new one fails inside the stability window, so none is ready to say which
  // addresses the old release serves.
  const n = 2;
  const [A, B] = ['127.0.0.1:1', '127.0.0.1:2'];
  let newWorkers = 0;
  const { master, finish } = rig(t, { forks: n, stableMs: 200 }, (proc, spec) => {
    exitOnDrain(proc);
    if (spec.generation === 1) {
      // The old release opens its second port a moment after its first.
      proc.after(0, () => proc.listen(A));
      proc.after(50, () => proc.listen(B));
    } else {
      proc.after(0, () => {
        proc.listen(A);
        proc.listen(B);
      });
      // The last new worker dies inside the stability window.
      if (++newWorkers === n) proc.after(30, () => proc.exit(1));
    }
  });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  await waitFor('both addresses on every worker', () => master.status().workers.every((w) => w.listening.length === 2), {
    timeoutMs: OP_DEADLINE_MS,
  });

  const error = await rejection('upgrade', master.upgrade(V2));
  assert.match(error.message, /^upgrade rolled back: worker \d+ crashed/);
  // The rollback answers once the old release serves both addresses again: the
  // surviving new worker was drained only then, so B never went without a worker.
  assert.deepEqual(
    master.status().workers.map((w) => [w.generation, w.state, [...w.listening].sort()]),
    Array.from({ length: n }, () => [1, 'ready', [A, B]]),
  );
  await finish();
});

test('maxSurge 2: two new workers boot at once, each old one drains only after a replacement is ready', async (t) => {
  const n = 4;
  const { master, launcher, finish } = rig(t, { forks: n, maxSurge: 2 }, (proc, spec, index) => {
    exitOnDrain(proc);
    // New workers take 30 ms to boot, so the overlap is visible.
    proc.after(spec.generation === 1 ? 0 : 30, () => proc.listen());
    void index;
  });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  const rec = record(master);
  const result = await withDeadline('upgrade', master.upgrade(V2), OP_DEADLINE_MS);
  rec.stop();
  const trace = rec.events.map(describe).join('\n');

  assertReadyNeverBelow(rec.events, n);
  assertLiveNeverAbove(rec.events, n + 2);
  assert.ok(rec.events.some((e) => e.counts.starting === 2), `two booted at once:\n${trace}`);
  assert.ok(rec.events.every((e) => e.counts.starting <= 2), trace);
  // Never more old workers draining than new ones ready.
  let newReady = 0;
  let oldDraining = 0;
  for (const e of rec.events) {
    if (e.to === 'ready' && e.worker.generation === 2) newReady++;
    if (e.to === 'draining' && e.worker.generation === 1) oldDraining++;
    assert.ok(oldDraining <= newReady, trace);
  }
  assert.equal(result.generation, 2);
  assert.equal(launcher.ofGeneration(2).length, n);
  assertPool(master, n, 2, V2);
  await finish();
});

test('crash respawn outside operations: same generation, doubling backoff up to the cap', async (t) => {
  const n = 2;
  const INITIAL = 20;
  const MAX = 80;
  const CRASHES = 5; // respawns that die at once before one finally stays up
  const expectedDelays = [20, 40, 80, 80, 80, 80];
  let respawns = 0;
  const { master, launcher, warnings, finish } = rig(
    t,
    { forks: n, backoffInitialMs: INITIAL, backoffMaxMs: MAX },
    (proc, spec, index) => {
      if (index < n) return defaultBehaviour(proc, spec, index);
      if (++respawns <= CRASHES) {
        proc.after(0, () => {
          proc.stderr('Error: boom');
          proc.exit(1);
        });
      } else defaultBehaviour(proc, spec, index);
    },
  );
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  assert.equal(master.status().restarts, 0);

  const victim = launcher.processes[0]!;
  victim.exit(1);
  const crashedAt = victim.exitedAt!;

  await waitFor(
    `the pool to recover after ${CRASHES + 1} respawns`,
    () => launcher.processes.length === n + CRASHES + 1 && master.status().counts.ready === n,
    { timeoutMs: OP_DEADLINE_MS },
  );

  const spawned = launcher.processes.slice(n);
  assert.ok(spawned.every((p) => p.generation === 1 && p.spec.target === V1));
  // What the master announced: exactly the doubling sequence, capped — non-decreasing by construction.
  const announced = warnings
    .filter((w) => w.includes('respawning in'))
    .map((w) => /respawning in (\d+) ms \(crash (\d+) in a row\)/.exec(w)!.slice(1).map(Number));
  assert.deepEqual(
    announced,
    expectedDelays.map((delayMs, i) => [delayMs, i + 1]),
  );
  // What it did, on the clock: each respawn waited at least its delay after the previous spawn
  // (or the first crash), so the waits really grew 20 → 40 → 80. 5 ms of slack: a Node timer
  // counts from the event loop's cached clock, which can lag performance.now(). Timers fire late
  // under load, never early, so upper bounds stay loose.
  const gaps = spawned.map((p, i) => p.launchedAt - (i === 0 ? crashedAt : spawned[i - 1]!.launchedAt));
  const shown = gaps.map((g) => g.toFixed(1)).join(', ');
  gaps.forEach((gap, i) => {
    assert.ok(gap >= expectedDelays[i]! - 5, `gap ${i} is ${gap} ms, expected >= ${expectedDelays[i]} (gaps: ${shown})`);
  });
  // At the cap it stops doubling: `announced` above says so; timers can fire late, so the gaps give no upper bound.

  const s = master.status();
  assert.equal(s.restarts, CRASHES + 1);
  assertPool(master, n, 1, V1);
  const newest = s.workers.find((w) => w.id === spawned.at(-1)!.id);
  assert.equal(newest?.restarts, CRASHES + 1, 'the slot counts its restarts');
  await finish();
});

test('crash respawn: the backoff resets once a worker stayed ready backoffResetMs', async (t) => {
  const n = 1;
  let respawns = 0;
  const { master, launcher, warnings, finish } = rig(
    t,
    { forks: n, backoffInitialMs: 20, backoffMaxMs: 1000, backoffResetMs: 100 },
    (proc, spec, index) => {
      // First respawn dies at once; the others behave.
      if (index >= n && ++respawns === 1) proc.after(0, () => proc.exit(1));
      else defaultBehaviour(proc, spec, index);
    },
  );
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  launcher.processes[0]!.exit(1); // ready a moment: streak 1 → 20 ms
  // respawn 1 dies at once: streak 2 → 40 ms; respawn 2 comes up.
  const second = await waitFor(
    'respawn 2 to be ready',
    () => master.status().workers.find((w) => w.state === 'ready' && w.id === launcher.processes[2]?.id),
    { timeoutMs: OP_DEADLINE_MS },
  );
  // Let it stay ready past backoffResetMs, then crash it: the streak starts over.
  await waitFor('respawn 2 to have been ready 120 ms', () => Date.now() - second.readyAt!.getTime() >= 120, {
    timeoutMs: OP_DEADLINE_MS,
    intervalMs: 10,
  });
  launcher.processes[2]!.exit(1);
  await waitFor('respawn 3 to be ready', () => launcher.processes.length === 4 && master.status().counts.ready === n, {
    timeoutMs: OP_DEADLINE_MS,
  });
  assert.deepEqual(
    warnings.filter((w) => w.includes('respawning in')).map((w) => /respawning in (\d+) ms \(crash (\d+) in a row\)/.exec(w)!.slice(1).map(Number)),
    [
      [20, 1],
      [40, 2],
      [20, 1],
    ],
  );
  assert.equal(master.status().restarts, 3);
  await finish();
});

/**
/**
 * A started pool of n whose generation-2 workers listen only 100 ms after
 * launch, and an upgrade to V2 caught in flight: its first new worker has
 * just launched.
 */
async function upgradeInFlight(t: TestContext, n: number) {
  const rigged = rig(
    t,
    { forks: n },
    forGeneration2((proc) => {
      exitOnDrain(proc);
      proc.after(100, () => proc.listen());
    }),
  );
  await withDeadline('start', rigged.master.start(V1), OP_DEADLINE_MS);
  const launched = new Promise<FakeProcess>((resolve) => rigged.launcher.once('launch', resolve));
  const upgrade = rigged.master.upgrade(V2);
  const firstNew = await withDeadline('the first new worker to launch', launched, OP_DEADLINE_MS);
  assert.equal(firstNew.generation, 2);
  return { ...rigged, upgrade, firstNew };
}

test('one operation at a time: Upgrade, Kill and Start are refused while an upgrade runs', async (t) => {
  const n = 2;
  const { master, upgrade, finish } = await upgradeInFlight(t, n);
  let upgradeSettled = false;
  void upgrade.then(
    () => (upgradeSettled = true),
    () => (upgradeSettled = true),
  );
  assert.equal(master.status().operation, 'upgrade');

  for (const [what, attempt] of [
    ['a second upgrade', () => master.upgrade(V3)],
    ['kill', () => master.kill()],
    ['start', () => master.start(V3)],
  ] as const) {
    const error = await rejection(what, attempt(), 50);
    assert.equal(error.code, status.ABORTED, `${what}: ${error.message}`);
    assert.match(error.message, /upgrade in progress/);
    assert.equal(upgradeSettled, false, `${what} was refused only after the upgrade had finished`);
  }

  const result = await withDeadline('upgrade', upgrade, OP_DEADLINE_MS);
  assert.equal(result.generation, 2);
  assert.equal(result.target, V2);
  assertPool(master, n, 2, V2);
  await finish();
});

test('die() during an upgrade cancels it and stops every worker', async (t) => {
  const n = 2;
  const { master, launcher, upgrade, firstNew, finish } = await upgradeInFlight(t, n);

  let stoppedEmitted = false;
  master.once('stopped', () => (stoppedEmitted = true));
  const stopped = new Promise<void>((resolve) => master.once('stopped', resolve));
  const dying = master.die();
  assert.equal(master.die(), dying, 'die() again returns the same promise');

  const error = await rejection('upgrade', upgrade);
  assert.equal(error.code, status.UNAVAILABLE);
  assert.match(error.message, /upgrade cancelled: the master is shutting down/);

  const result = await withDeadline('die', dying, OP_DEADLINE_MS);
  assert.equal(result.stopped, n + 1, 'the old workers and the starting new one');
  await withDeadline("'stopped'", stopped, OP_DEADLINE_MS);
  assert.equal(stoppedEmitted, true);

  // Every process is gone: the old ones drained, the starting new one killed.
  assert.deepEqual(launcher.running(), []);
  assert.equal(launcher.processes.length, n + 1, 'no worker forked after die()');
  for (const p of launcher.ofGeneration(1)) {
    assert.equal(p.drainRequested, true);
    assert.equal(p.exitCode, 0);
  }
  assert.deepEqual(firstNew.signals, ['SIGKILL']);
  assert.equal(master.status().counts.ready + master.status().counts.starting + master.status().counts.draining, 0);
  assert.equal(master.status().operation, 'die');

  // Nothing new starts once the master is stopping.
  const after = await rejection('upgrade after die', master.upgrade(V2));
  assert.equal(after.code, status.UNAVAILABLE);
  await finish();
});

test("the 'upgrade' event says how each upgrade ended: ok, vetoed, rolled back, aborted; a refused one has no event", async (t) => {
  const { master, launcher, finish } = rig(t, { forks: 2, preUpgrade: fixture('hook-veto-on-request.js') });
  const reports: UpgradeReport[] = [];
  master.on('upgrade', (report) => reports.push(report));
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);

  const ok = await withDeadline('upgrade', master.upgrade(V2), OP_DEADLINE_MS);
  await rejection('vetoed upgrade', master.upgrade(V3, { hookData: { veto: 'release frozen' } }));
  launcher.behave = (proc, spec, index) => {
    if (spec.generation === 3) proc.after(0, () => proc.exit(1)); // cannot boot: rolled back
    else if (spec.generation === 4) exitOnDrain(proc); // never ready: still booting when Die comes
    else defaultBehaviour(proc, spec, index);
  };
  await rejection('failing upgrade', master.upgrade(V3));
  const launched = new Promise<FakeProcess>((resolve) => launcher.once('launch', resolve));
  const cancelled = master.upgrade(V1);
  await withDeadline('the new worker to launch', launched, OP_DEADLINE_MS);
  const refused = await rejection('a second upgrade', master.upgrade(V2), 50);
  assert.equal(refused.code, status.ABORTED);
  const dying = master.die();
  assert.equal((await rejection('cancelled upgrade', cancelled)).code, status.UNAVAILABLE);
  await withDeadline('die', dying, OP_DEADLINE_MS);

  assert.deepEqual(
    reports.map((r) => r.outcome),
    ['ok', 'vetoed', 'rolled_back', 'aborted'],
  );
  assert.equal(reports[0]!.durationMs, ok.durationMs, 'the ok report carries the duration of the reply');
  await finish();
});

test('kill(): every worker gets SIGKILL and n fresh ones of the same release become ready', async (t) => {
  const n = 3;
  const { master, launcher, finish } = rig(t, { forks: n });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  const victims = [...launcher.processes];

  const rec = record(master);
  const result = await withDeadline('kill', master.kill(), OP_DEADLINE_MS);
  rec.stop();

  assert.equal(result.killed, n);
  for (const p of victims) {
    assert.deepEqual(p.signals, ['SIGKILL']);
    assert.equal(p.exited, true);
    assert.equal(p.exitSignal, 'SIGKILL');
    assert.equal(p.drainRequested, false, 'killed, not drained');
  }
  // Reported as asked-for stops, not as crashes.
  assert.deepEqual(
    rec.events.filter((e) => e.to === 'exited').map((e) => [e.worker.id, e.from, e.worker.reason]),
    victims.map((p) => [p.id, 'ready', 'stopped (was killed by SIGKILL)']),
  );
  assert.equal(launcher.processes.length, 2 * n, 'exactly n replacements, no crash respawns');
  const fresh = launcher.processes.slice(n);
  assert.deepEqual(result.workers.map((w) => w.id), fresh.map((p) => p.id));
  assert.ok(result.workers.every((w) => w.state === 'ready' && w.generation === 1));
  assertPool(master, n, 1, V1);
  assert.deepEqual(master.status().workers.map((w) => w.id), fresh.map((p) => p.id));
  assert.equal(master.status().restarts, 0, 'a kill is not a crash');
  await finish();
});

// ---------------------------------------------------------------------------
// The OS refusing a fork: cluster.fork throws (ENOMEM), or the spawn fails
// after it returned (EAGAIN). Each operation fails on its own terms.

/** Checks status(): no worker, nothing started, no operation. */
function assertEmpty(master: Master): void {
  const s = master.status();
  assert.deepEqual(s.counts, { starting: 0, ready: 0, draining: 0 });
  assert.deepEqual(s.workers, []);
  assert.equal(s.generation, 0);
  assert.equal(s.target, '');
  assert.equal(s.operation, '');
}

test('Start: a fork the OS refuses fails the start (RESOURCE_EXHAUSTED), stops the workers it forked, and Start works again', async (t) => {
  const n = 3;
  const { master, launcher, finish } = rig(t, { forks: n });
  launcher.refuse = (_spec, attempt) => (attempt === 2 ? forkError('ENOMEM') : undefined);
  const error = await rejection('start', master.start(V1));
  assert.equal(error.code, status.RESOURCE_EXHAUSTED);
  assert.equal(error.message, 'start failed: could not fork a worker: spawn ENOMEM');
  assert.equal(launcher.processes.length, 1, 'no fork after the refused one');
  assert.deepEqual(launcher.processes[0]!.signals, ['SIGKILL']);
  assert.equal(launcher.processes[0]!.exited, true);
  assertEmpty(master);

  launcher.refuse = undefined;
  const retry = await withDeadline('start again', master.start(V1), OP_DEADLINE_MS);
  assert.equal(retry.workers.length, n);
  assertPool(master, n, retry.generation, V1);
  await finish();
});

test('Start: a worker whose spawn fails after fork returned (EAGAIN) fails the start (RESOURCE_EXHAUSTED), naming it', async (t) => {
  const n = 2;
  const { master, launcher, finish } = rig(t, { forks: n }, (proc, spec, index) => {
    if (index === 1) proc.after(0, () => proc.failFork(forkError('EAGAIN')));
    else defaultBehaviour(proc, spec, index);
  });
  const error = await rejection('start', master.start(V1));
  assert.equal(error.code, status.RESOURCE_EXHAUSTED);
  assert.equal(error.message, `start failed: worker ${launcher.processes[1]!.id} could not be forked: spawn EAGAIN`);
  assertEmpty(master);
  launcher.behave = defaultBehaviour;
  await withDeadline('start again', master.start(V1), OP_DEADLINE_MS);
  assert.equal(master.status().counts.ready, n);
  await finish();
});

test('Upgrade: a fork the OS refuses rolls back like a new worker that failed', async (t) => {
  const n = 2;
  const { master, launcher, finish } = rig(t, { forks: n });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  const reports: UpgradeReport[] = [];
  master.on('upgrade', (report) => reports.push(report));
  // The second new worker cannot be forked.
  launcher.refuse = (spec) => (spec.generation === 2 && launcher.ofGeneration(2).length === 1 ? forkError('ENOMEM') : undefined);

  const rec = record(master);
  const error = await rejection('upgrade', master.upgrade(V2));
  rec.stop();
  assert.equal(error.code, status.FAILED_PRECONDITION);
  assert.equal(error.message, 'upgrade rolled back: could not fork a worker: spawn ENOMEM');
  assert.deepEqual(reports.map((r) => r.outcome), ['rolled_back']);
  assertReadyNeverBelow(rec.events, n);
  assertPool(master, n, 1, V1);
  assert.equal(launcher.ofGeneration(2).length, 1);
  assert.ok(launcher.ofGeneration(2).every((p) => p.exited && p.drainRequested), 'the new worker that was ready was drained');
  await finish();
});

test('Upgrade: a new worker whose spawn fails after fork returned (EAGAIN) rolls back, naming it', async (t) => {
  const n = 2;
  const { master, launcher, finish } = rig(
    t,
    { forks: n },
    forGeneration2((proc) => proc.after(0, () => proc.failFork(forkError('EAGAIN')))),
  );
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  const error = await rejection('upgrade', master.upgrade(V2));
  assert.equal(error.code, status.FAILED_PRECONDITION);
  assert.equal(error.message, `upgrade rolled back: worker ${launcher.ofGeneration(2)[0]!.id} could not be forked: spawn EAGAIN`);
  assertPool(master, n, 1, V1);
  await finish();
});

test('Upgrade: when the rollback cannot fork either, the ready new workers keep serving until the old release is back', async (t) => {
  const n = 2;
  const { master, launcher, finish } = rig(t, { forks: n, backoffInitialMs: 10 });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  let refusedRestores = 0;
  launcher.refuse = (spec) => {
    if (spec.generation === 2 && launcher.ofGeneration(2).length === 1) return forkError('ENOMEM');
    if (spec.generation === 1 && ++refusedRestores <= 2) return forkError('ENOMEM'); // the restore, then the first refill
    return undefined;
  };
  const rec = record(master);
  const error = await rejection('upgrade', master.upgrade(V2));
  assert.equal(error.code, status.FAILED_PRECONDITION);
  assert.equal(
    error.message,
    'upgrade rolled back: could not fork a worker: spawn ENOMEM; restoring generation 1 failed too: could not fork a worker: spawn ENOMEM',
  );
  await waitFor('the pool to be back on v1 alone', () => {
    const s = master.status();
    return s.counts.ready === n && s.counts.starting === 0 && s.counts.draining === 0 && s.workers.every((w) => w.generation === 1);
  }, { timeoutMs: OP_DEADLINE_MS });
  rec.stop();
  assertReadyNeverBelow(rec.events, n);
  assertPool(master, n, 1, V1);
  await finish();
});

test('Kill: a fork the OS refuses fails the kill (RESOURCE_EXHAUSTED), and the crash backoff brings the pool back', async (t) => {
  const n = 2;
  const { master, launcher, finish } = rig(t, { forks: n, backoffInitialMs: 10 });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  // Launches 1-2 were the start, 3-4 are the kill's replacements, 5 the refill after it.
  launcher.refuse = (_spec, attempt) => (attempt === 4 || attempt === 5 ? forkError('EAGAIN') : undefined);
  const error = await rejection('kill', master.kill());
  assert.equal(error.code, status.RESOURCE_EXHAUSTED);
  assert.equal(error.message, `killed ${n} worker(s) but the respawn failed: could not fork a worker: spawn EAGAIN`);
  await waitFor('the pool to be whole again', () => master.status().counts.ready === n, { timeoutMs: OP_DEADLINE_MS });
  assert.equal(launcher.processes.length, 2 * n, 'the start, one replacement from the kill, one from the retry');
  assertPool(master, n, 1, V1);
  assert.equal(master.status().restarts, 0, 'nothing crashed');
  await finish();
});

test('a crash respawn the OS refuses to fork is tried again after the backoff', async (t) => {
  const { master, launcher, warnings, finish } = rig(t, { forks: 1, backoffInitialMs: 10 });
  await withDeadline('start', master.start(V1), OP_DEADLINE_MS);
  launcher.refuse = (_spec, attempt) => (attempt === 2 ? forkError('ENOMEM') : undefined);
  launcher.processes[0]!.exit(1);
  await waitFor('the pool to be whole again', () => master.status().counts.ready === 1 && launcher.processes.length === 2, {
    timeoutMs: OP_DEADLINE_MS,
  });
  assert.ok(warnings.some((w) => /respawning in 10 ms \(crash 1 in a row\)/.test(w)), warnings.join('\n'));
  assert.equal(master.status().restarts, 1);
  assert.equal(master.status().workers[0]!.restarts, 1);
  await finish();
});
