/**
 * A crash loop through a real master: the status and the watch stream say
 * what is crashing and why (restart count, exit code, stderr tail), the
 * respawns back off (100, 200, 400 ms… per slot), and Kill and Die still
 * work. (An upgrade to fixed code ending a loop: crash.test.ts; the master's
 * CPU during a crash loop: npm run bench:timings.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkerState, type Transition } from '../src/client/index.js';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { expectGone, waitFor, withDeadline } from './helpers/wait.js';


test('a crash loop shows its restarts, exit code and stderr tail, backs off, and Kill and Die still work', async (t) => {
  const port = await freePort();
  // Ready, then dead 150 ms later with "Error: boom shortly after listening", every time.
  const master = await startMaster(fixture('crash-after-ready.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const abort = new AbortController();
  t.after(() => abort.abort());
  const transitions: Transition[] = [];
  const watching = (async () => {
    for await (const item of master.client.watch({ signal: abort.signal })) {
      if (item.event?.$case === 'transition') transitions.push(item.event.transition);
    }
  })().catch(() => {});
  const crashes = () => transitions.filter((tr) => tr.toState === WorkerState.WORKER_STATE_EXITED);

  await waitFor('three crashes in a row of one slot', () => /crash 3 in a row/.test(master.stderr()), { timeoutMs: 15_000 });

  // GetStatus: how many restarts, and the last crash with its exit code and stderr tail.
  const looping = await master.client.status();
  assert.ok(looping.restarts >= 2, `restarts ${looping.restarts}`);
  const last = looping.lastCrash;
  assert.ok(last, 'GetStatus carries the last crash');
  assert.equal(last.state, WorkerState.WORKER_STATE_EXITED);
  assert.equal(last.exitCode, 1);
  assert.equal(last.target, fixture('crash-after-ready.js'));
  assert.match(last.reason, /^crashed: exited with code 1: Error: boom shortly after listening/);
  assert.ok(last.stderrTail.some((line) => /Error: boom shortly after listening/.test(line)), last.stderrTail.join('\n'));
  assert.ok(last.stderrTail.length <= 20);
  // Both slots may be waiting out their backoff right now (no worker listed): wait for a respawn.
  await waitFor('a respawned worker that counts its restarts', async () =>
    (await master.client.status()).workers.some((w) => w.restarts >= 1),
  );

  // WatchWorkers: every EXITED transition of a crash carries the exit code and the stderr tail.
  await waitFor('the watch stream to show a crash', () => crashes().length > 0);
  const seen = crashes()[0]!.worker!;
  assert.equal(seen.exitCode, 1);
  assert.ok(seen.stderrTail.some((line) => /boom shortly after listening/.test(line)));

  // The CLI shows it too.
  const text = (await runCli(['--status', ...master.via])).stdout;
  assert.match(text, /last crash: worker \d+ \(pid \d+, gen 1, \d+ restart\(s\) before it\) crashed: exited with code 1: Error: boom/);

  // The respawns back off: each crash in a row of a slot waits twice as long as the one before.
  const announced = [...master.stderr().matchAll(/respawning in (\d+) ms \(crash (\d+) in a row\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.ok(announced.some(([, streak]) => streak === 3), 'a slot crashed three times in a row');
  for (const [delayMs, streak] of announced) assert.equal(delayMs, 100 * 2 ** (streak! - 1), `crash ${streak} in a row waits ${delayMs} ms`);

  // Kill works in the middle of the loop: every worker killed, a fresh pool ready. The
  // fixture crashes 150 ms after it is ready, so when the second fresh worker gets ready
  // on a loaded machine the first may have crashed already: each one was ready, and
  // each is still READY or EXITED by that crash.
  const before = await master.client.status();
  const killed = await master.client.kill();
  assert.equal(killed.workers.length, 2);
  for (const worker of killed.workers) {
    assert.ok(worker.readyAt, `worker ${worker.id} became ready`);
    if (worker.state !== WorkerState.WORKER_STATE_READY) {
      assert.equal(worker.state, WorkerState.WORKER_STATE_EXITED);
      assert.match(worker.reason, /^crashed: exited with code 1: Error: boom shortly after listening/);
    }
  }
  for (const worker of before.workers) assert.ok(!killed.workers.some((w) => w.pid === worker.pid));

  // Die works in the middle of the loop: no respawn sneaks in, every pid is gone, exit 0.
  const lastBeforeDie = (await master.client.status()).sequence;
  const died = await master.client.die({ drainTimeoutMs: 5000 });
  assert.equal(await withDeadline('the master to exit', master.exited, 10_000), 0);
  await expectGone([master.pid, ...master.workerPids()]);
  const afterStop = master.stderr().slice(master.stderr().search(/stopping \d+ worker\(s\)/));
  assert.doesNotMatch(afterStop, /starting: forked/, 'no worker was forked once the master began stopping');
  abort.abort();
  await watching;
  // Die stopped exactly the workers alive when it began: each ready one drained, each starting one killed.
  const stoppedByDie = new Set(
    transitions
      .filter((tr) => tr.sequence > lastBeforeDie)
      .filter(
        (tr) =>
          (tr.toState === WorkerState.WORKER_STATE_DRAINING && tr.worker!.reason === 'master stopping') ||
          (tr.fromState === WorkerState.WORKER_STATE_STARTING && tr.toState === WorkerState.WORKER_STATE_EXITED && tr.worker!.reason.startsWith('stopped')),
      )
      .map((tr) => tr.worker!.id),
  );
  assert.equal(died.stopped, stoppedByDie.size, `Die stopped ${died.stopped}; the stream shows ${[...stoppedByDie].join(', ')}`);
  assert.ok(died.stopped <= 2);
  // The app port is quiet: nothing is left serving.
  await assert.rejects(get(port, '/', false, 1000));
});
