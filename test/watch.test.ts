/**
 * WatchWorkers through a real master: a snapshot, then every transition of a
 * rolling upgrade v1 → v2 (forks 2) in order, with gapless sequence numbers
 * and never fewer than 2 workers ready; and `liveswap --watch --json` printing
 * the same stream as NDJSON until it is told to stop.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Transition, WorkerState, type Snapshot, type WatchWorkersResponse } from '../src/client/index.js';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { spawnCli, startMaster } from './helpers/processes.js';
import { waitFor, withDeadline } from './helpers/wait.js';

const { WORKER_STATE_UNSPECIFIED: UNSPECIFIED, WORKER_STATE_STARTING: STARTING, WORKER_STATE_READY: READY } = WorkerState;
const { WORKER_STATE_DRAINING: DRAINING, WORKER_STATE_EXITED: EXITED } = WorkerState;

const name = (state: WorkerState) => WorkerState[state]?.replace('WORKER_STATE_', '') ?? String(state);
const show = (t: Transition) => `#${t.sequence} worker ${t.worker!.id} g${t.worker!.generation} ${name(t.fromState)}→${name(t.toState)} ready=${t.counts!.ready}`;

test('watch(): a snapshot of 2 v1 workers, then every upgrade transition in order', async (t) => {
  const port = await freePort();
  // Both new workers boot at once (the default on a machine with 2 cores or more; pinned here).
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) }, args: ['--max-surge', '2'] });
  t.after(() => master.stop());
  const abort = new AbortController();
  t.after(() => abort.abort());

  const events = master.client.watch({ signal: abort.signal });
  const next = async (what: string): Promise<WatchWorkersResponse> => {
    const item = await withDeadline(what, events.next(), 10_000);
    assert.ok(!item.done, `the watch stream ended while waiting for ${what}`);
    return item.value;
  };

  // The snapshot comes first: from here on, no transition can be missed.
  const first = await next('the snapshot');
  assert.equal(first.event?.$case, 'snapshot', `first item is ${first.event?.$case}`);
  const snapshot: Snapshot = (first.event as { snapshot: Snapshot }).snapshot;
  assert.equal(snapshot.workers.length, 2);
  assert.equal(snapshot.generation, 1);
  assert.equal(snapshot.target, fixture('v1.js'));
  for (const worker of snapshot.workers) {
    assert.equal(worker.state, READY, `snapshot worker ${worker.id} is ${name(worker.state)}`);
    assert.equal(worker.generation, 1);
    assert.equal(worker.target, fixture('v1.js'));
  }
  assert.deepEqual(snapshot.counts, { starting: 0, ready: 2, draining: 0 });
  const status = await master.client.status();
  assert.deepEqual(
    snapshot.workers.map((w) => w.pid).sort(),
    status.workers.map((w) => w.pid).sort(),
    'the snapshot lists the workers status() lists',
  );
  const oldIds = snapshot.workers.map((w) => w.id);

  const upgrade = master.client.upgrade({ target: fixture('v2.js') });
  upgrade.catch(() => {}); // awaited below; keep an early rejection from going unhandled

  // 2 new workers × (→starting, →ready) + 2 old workers × (→draining, →exited).
  const transitions: Transition[] = [];
  while (transitions.length < 8) {
    const item = await next(`transition ${transitions.length + 1} of 8 (so far: ${transitions.map(show).join('; ')})`);
    assert.equal(item.event?.$case, 'transition', 'only the first item is a snapshot');
    transitions.push((item.event as { transition: Transition }).transition);
  }
  const result = await withDeadline('the upgrade', upgrade, 15_000);
  assert.equal(result.generation, 2);
  const log = transitions.map(show).join('\n');

  // Sequence numbers: strictly increasing by exactly 1.
  for (let i = 1; i < transitions.length; i++) {
    assert.equal(transitions[i]!.sequence, transitions[i - 1]!.sequence + 1, `sequence gap or reorder:\n${log}`);
  }
  assert.ok(transitions[0]!.sequence > 0);

  for (const tr of transitions) {
    assert.equal(tr.toState, tr.worker!.state, `to_state equals worker.state:\n${log}`);
    // Never fewer ready than the pool size, and at most two extra live workers (maxSurge 2).
    assert.ok(tr.counts!.ready >= 2, `fewer than 2 ready at #${tr.sequence}:\n${log}`);
    assert.ok(tr.counts!.ready + tr.counts!.starting <= 4, `more than 4 live workers at #${tr.sequence}:\n${log}`);
  }

  const newIds = [...new Set(transitions.filter((tr) => tr.worker!.generation === 2).map((tr) => tr.worker!.id))];
  assert.equal(newIds.length, 2, `two new workers:\n${log}`);
  for (const id of newIds) assert.ok(!oldIds.includes(id), `new worker ${id} has a fresh id`);
  assert.deepEqual(
    result.workers.map((w) => w.id).sort(),
    [...newIds].sort(),
    'the upgrade reply lists the new workers the stream announced',
  );
  const moves = (id: number) =>
    transitions.filter((tr) => tr.worker!.id === id).map((tr) => `${name(tr.fromState)}→${name(tr.toState)}`);
  for (const id of newIds) {
    assert.deepEqual(moves(id), [`${name(UNSPECIFIED)}→${name(STARTING)}`, `${name(STARTING)}→${name(READY)}`], `new worker ${id}:\n${log}`);
  }
  for (const id of oldIds) {
    assert.deepEqual(moves(id), [`${name(READY)}→${name(DRAINING)}`, `${name(DRAINING)}→${name(EXITED)}`], `old worker ${id}:\n${log}`);
    const exited = transitions.find((tr) => tr.worker!.id === id && tr.toState === EXITED)!;
    assert.equal(exited.worker!.generation, 1);
    assert.equal(exited.worker!.exitCode, 0, `old worker ${id} drained cleanly: ${exited.worker!.reason}`);
  }

  // Ready before drain: the k-th old worker drains only after the k-th new worker is ready.
  const readyAt = transitions.flatMap((tr, i) => (tr.worker!.generation === 2 && tr.toState === READY ? [i] : []));
  const drainAt = transitions.flatMap((tr, i) => (tr.toState === DRAINING ? [i] : []));
  assert.equal(readyAt.length, 2);
  assert.equal(drainAt.length, 2);
  assert.ok(readyAt[0]! < drainAt[0]!, `a new worker is ready before the first old worker drains:\n${log}`);
  assert.ok(readyAt[1]! < drainAt[1]!, `the second new worker is ready before the second old worker drains:\n${log}`);

  const last = transitions.at(-1)!;
  assert.equal(last.toState, EXITED);
  assert.deepEqual(last.counts, { starting: 0, ready: 2, draining: 0 });
  assert.equal((await get(port)).body, 'v2');
});

test('liveswap --watch --json prints NDJSON until SIGTERM', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const watcher = spawnCli(t, ['--watch', '--json', ...master.via]);
  const items = () =>
    watcher
      .stdout()
      .split('\n')
      .slice(0, -1) // only complete lines
      .map((line) => JSON.parse(line) as Record<string, any>);

  const [first] = await waitFor('the watcher to print the snapshot', () => (items().length > 0 ? items() : undefined));
  assert.ok(first!.snapshot, `first line is a snapshot: ${JSON.stringify(first)}`);
  assert.equal(first!.snapshot.workers.length, 2);
  assert.equal(first!.transition, undefined);

  await master.client.upgrade({ target: fixture('v2.js') });
  const exitedLines = () => items().filter((item) => item.transition?.toState === 'WORKER_STATE_EXITED');
  await waitFor('the watcher to print both old workers exiting', () => exitedLines().length >= 2, { timeoutMs: 5000 });

  watcher.child.kill('SIGTERM');
  const exit = await withDeadline('the watcher to exit after SIGTERM', watcher.exited, 5000);
  assert.deepEqual(exit, { code: 0, signal: null }, `watcher stderr: ${watcher.stderr()}`);
  assert.equal(watcher.stderr(), '');

  // Every line is one JSON object; after the snapshot, transitions with gapless sequence numbers.
  const all = items();
  assert.ok(watcher.stdout().endsWith('\n'));
  assert.equal(all.length, 9, `1 snapshot + 8 transitions, got:\n${watcher.stdout()}`);
  const transitions = all.slice(1);
  for (const item of transitions) {
    assert.ok(item.transition && !item.snapshot, `later lines are transitions: ${JSON.stringify(item)}`);
  }
  const sequences = transitions.map((item) => Number(item.transition.sequence));
  for (let i = 1; i < sequences.length; i++) assert.equal(sequences[i], sequences[i - 1]! + 1, `sequences ${sequences.join(', ')}`);
  assert.equal(transitions.filter((item) => item.transition.toState === 'WORKER_STATE_READY').length, 2);
});
