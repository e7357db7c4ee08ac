/**
 * The live view: the worker table (a pure function, and a real --status), the
 * in-place redraw of --watch on a real pseudo-terminal (util-linux `script`),
 * and --watch --json as a log shipper sees it: an upgrade's events in order,
 * quiet on a closed pipe, one line when the master vanishes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { WatchWorkersResponse, WorkerState, type Worker } from '../src/client/index.js';
import { EXITED_LINGER_MS, HIDE_CURSOR, SHOW_CURSOR, WatchModel } from '../src/cli/watch-view.js';
import { TABLE_COLUMNS, workerTableLines } from '../src/cli/worker-table.js';
import { freePort } from './helpers/net.js';
import { CLI, fixture, tempDir } from './helpers/paths.js';
import { runCli, spawnCli, startMaster } from './helpers/processes.js';
import { isAlive, waitFor, withDeadline } from './helpers/wait.js';

const { WORKER_STATE_STARTING: STARTING, WORKER_STATE_READY: READY } = WorkerState;
const { WORKER_STATE_DRAINING: DRAINING, WORKER_STATE_EXITED: EXITED } = WorkerState;

const T0 = Date.parse('2026-01-01T12:00:00Z');

function worker(fields: Partial<Worker> & Pick<Worker, 'id' | 'state'>): Worker {
  return {
    pid: 1000 + fields.id,
    generation: 1,
    target: '/srv/app/releases/2026-01-01/server.js',
    startedAt: new Date(T0),
    restarts: 0,
    exitSignal: '',
    reason: 'listening on 127.0.0.1:8080',
    listening: [],
    stderrTail: [],
    nodeVersion: 'v22.12.0',
    ...fields,
  };
}

test('worker table: one header and one row per worker, uptime from now, exits explained, no line over the width', () => {
  const workers = [
    worker({ id: 1, state: READY, startedAt: new Date(T0 - 3_723_000), restarts: 2 }),
    worker({ id: 2, state: DRAINING, startedAt: new Date(T0 - 75_000), reason: 'replaced by generation 2' }),
    worker({ id: 3, state: EXITED, reason: 'drained', exitCode: 0 }),
    worker({ id: 4, state: EXITED, reason: 'killed at the drain timeout', exitSignal: 'SIGKILL' }),
    worker({ id: 5, state: STARTING, generation: 2, startedAt: new Date(T0 - 400), reason: 'forked', target: '/srv/app/releases/2026-01-02/server.js' }),
  ];
  assert.deepEqual(workerTableLines(workers, T0), [
    'ID  PID   STATE     GEN  UPTIME  RESTARTS  TARGET                                  REASON',
    '1   1001  ready     1    1h2m    2         /srv/app/releases/2026-01-01/server.js  listening on 127.0.0.1:8080',
    '2   1002  draining  1    1m15s   0         /srv/app/releases/2026-01-01/server.js  replaced by generation 2',
    '3   1003  exited    1    -       0         /srv/app/releases/2026-01-01/server.js  drained (code 0)',
    '4   1004  exited    1    -       0         /srv/app/releases/2026-01-01/server.js  killed at the drain timeout (SIGKILL)',
    '5   1005  starting  2    0s      0         /srv/app/releases/2026-01-02/server.js  forked',
  ]);
  // A second later, the uptimes have ticked.
  assert.match(workerTableLines(workers, T0 + 1000)[5]!, /^5 +1005 +starting +2 +1s /);

  // A narrow terminal: the target is shortened from the left first, then lines are cut.
  const narrow = workerTableLines(workers, T0, { width: 70 });
  for (const line of narrow) assert.ok(line.length <= 70, `${line.length} > 70: ${line}`);
  assert.match(narrow[0]!, /^ID +PID +STATE +GEN +UPTIME +RESTARTS +TARGET +REASON$/);
  assert.match(narrow[1]!, /^1 +1001 +ready +1 +1h2m +2 +…[^ ]*01\/server\.js +liste/);
  assert.match(narrow[5]!, /…[^ ]*02\/server\.js +forked$/);
});

test('watch model: a snapshot, then transitions applied; exited workers linger, then leave', () => {
  const model = new WatchModel('unix:/run/app.sock');
  const snapshot = WatchWorkersResponse.fromPartial({
    event: { $case: 'snapshot', snapshot: { workers: [worker({ id: 1, state: READY })], counts: { ready: 1 }, sequence: 2 } },
  });
  model.apply(snapshot, T0);
  const first = model.lines(T0, 200);
  assert.equal(first[0], 'liveswap --watch unix:/run/app.sock: 1 ready, 0 starting, 0 draining; event #2');
  assert.match(first.join('\n'), /^1 +1001 +ready +1 +0s /m);

  const exit = WatchWorkersResponse.fromPartial({
    event: {
      $case: 'transition',
      transition: {
        worker: worker({ id: 1, state: EXITED, reason: 'crashed: exited with code 1', exitCode: 1 }),
        fromState: READY,
        toState: EXITED,
        counts: {},
        time: new Date(T0 + 5000),
        sequence: 3,
      },
    },
  });
  model.apply(exit, T0 + 5000);
  const after = model.lines(T0 + 5000, 200);
  assert.equal(after[0], 'liveswap --watch unix:/run/app.sock: 0 ready, 0 starting, 0 draining; event #3 at 12:00:05');
  assert.match(after.join('\n'), /^1 +1001 +exited +1 +- +0 .* crashed: exited with code 1$/m);
  assert.ok(after.includes('12:00:05 worker 1 (pid 1001, gen 1) ready → exited: crashed: exited with code 1'));
  const later = model.lines(T0 + 5000 + EXITED_LINGER_MS, 200);
  assert.ok(later.includes('no workers'), later.join('\n'));
  for (const line of model.lines(T0, 30)) assert.ok(line.length <= 30);
});

test('liveswap --status prints the worker table with every column', async (t) => {
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(await freePort()) } });
  t.after(() => master.stop());
  const result = await runCli(['--status', ...master.via]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  const header = lines.findIndex((line) => line.startsWith('ID '));
  assert.ok(header > 0, result.stdout);
  assert.deepEqual(lines[header]!.split(/\s+/), [...TABLE_COLUMNS]);
  const rows = lines.slice(header + 1).map((line) => line.split(/\s{2,}/));
  const status = await master.client.status();
  assert.equal(rows.length, 2);
  for (const [i, w] of status.workers.entries()) {
    const [id, pid, state, gen, uptime, restarts, target, reason] = rows[i]!;
    assert.deepEqual(
      { id, pid, state, gen, restarts, target, reason },
      { id: String(w.id), pid: String(w.pid), state: 'ready', gen: '1', restarts: '0', target: fixture('v1.js'), reason: w.reason },
    );
    assert.match(uptime!, /^\d+s$/);
    assert.match(reason!, /^listening on 127\.0\.0\.1:\d+$/);
  }
});

test('liveswap --watch on a terminal redraws the table in place and gives the cursor back on Ctrl-C', async (t) => {
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(await freePort()) } });
  t.after(() => master.stop());
  // A real pseudo-terminal, 120 columns wide; Ctrl-C typed into it reaches the CLI as SIGINT.
  const command = `stty cols 120 rows 40; exec ${process.execPath} ${CLI} --watch --socket ${master.socket}`;
  const term = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  term.stdout.on('data', (chunk) => (screen += chunk));
  term.stderr.on('data', (chunk) => (screen += chunk));
  const exited = new Promise<number | null>((resolve) => term.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (isAlive(term.pid!)) term.kill('SIGKILL');
    await exited;
  });
  const started = Date.now();
  await waitFor('the first frame', () => screen.includes('Ctrl-C to quit'));
  await master.client.upgrade({ target: fixture('v2.js') });
  // With no event since, the table is still redrawn (once a second), with the uptimes ticking.
  const { sequence } = await master.client.status();
  const quietFrames = () => screen.split(`event #${sequence} at`).length - 1;
  await waitFor('two redraws with no new event', () => quietFrames() >= 3, { timeoutMs: 5000 });
  term.stdin.write('\x03');
  assert.equal(await withDeadline('the watcher to exit on Ctrl-C', exited, 5000), 0, screen);
  const elapsedMs = Date.now() - started;

  assert.ok(screen.startsWith(HIDE_CURSOR), JSON.stringify(screen.slice(0, 40)));
  assert.ok(screen.trimEnd().endsWith(SHOW_CURSOR), JSON.stringify(screen.slice(-40)));
  // Each frame after the first starts by moving up exactly over the previous one.
  const frames = screen.replace(/\r/g, '').split(/\x1b\[(\d+)A/);
  const bodies = frames.filter((_, i) => i % 2 === 0);
  const moves = frames.filter((_, i) => i % 2 === 1).map(Number);
  assert.ok(moves.length >= 3, `at least 3 redraws, got ${moves.length}`);
  for (const [i, move] of moves.entries()) {
    const previousLines = bodies[i]!.split('\n').length - 1;
    assert.equal(move, previousLines, `frame ${i + 1} moves up over the ${previousLines} lines of frame ${i}`);
  }
  // Throttled: no more than one frame per 100 ms, plus the last.
  assert.ok(bodies.length <= elapsedMs / 100 + 2, `${bodies.length} frames in ${elapsedMs} ms`);

  // The last frame: the new workers ready, the old ones drained, the last events listed.
  const status = await master.client.status();
  const plain = bodies.map((body) => body.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''));
  const last = plain.at(-1)!;
  assert.match(last, /2 ready, 0 starting, 0 draining; event #\d+ at \d\d:\d\d:\d\d/);
  for (const w of status.workers) {
    assert.match(last, new RegExp(`^${w.id} +${w.pid} +ready +2 +\\d+s +0 +${fixture('v2.js')} +listening on`, 'm'));
  }
  assert.equal((last.match(/ exited +1 +- +0 .* drained \(code 0\)$/gm) ?? []).length, 2, last);
  assert.match(last, /draining → exited: drained$/m);
  const uptimes = plain
    .filter((body) => body.includes(`event #${sequence} at`))
    .map((body) => Number(new RegExp(`^${status.workers[0]!.id} +\\d+ +ready +2 +(\\d+)s`, 'm').exec(body)?.[1]));
  assert.ok(uptimes.at(-1)! > uptimes[0]!, `the uptime ticks between quiet redraws: ${uptimes.join(', ')}`);
});

interface JsonItem {
  snapshot?: { workers: Record<string, any>[]; sequence: string };
  transition?: { worker: Record<string, any>; fromState?: string; toState: string; sequence: string };
}

test('liveswap --watch --json: an upgrade as NDJSON, in order, ending where GetStatus ends', async (t) => {
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(await freePort()) } });
  t.after(() => master.stop());
  const watcher = spawnCli(t, ['--watch', '--json', ...master.via]);
  const items = () => watcher.stdout().split('\n').slice(0, -1).map((line) => JSON.parse(line) as JsonItem);

  await waitFor('the snapshot line', () => items().length >= 1);
  const result = await master.client.upgrade({ target: fixture('v2.js') });
  const status = await master.client.status();
  await waitFor('every transition up to the final sequence', () =>
    items().some((item) => item.transition && Number(item.transition.sequence) === status.sequence),
  );
  watcher.child.kill('SIGINT');
  assert.equal((await withDeadline('the watcher to exit on SIGINT', watcher.exited, 5000)).code, 0, watcher.stderr());
  assert.equal(watcher.stderr(), '');

  const [first, ...rest] = items();
  assert.ok(first!.snapshot && !first!.transition, 'the snapshot comes first');
  const oldIds = first!.snapshot.workers.map((w) => w.id as number);
  const transitions = rest.map((item) => {
    assert.ok(item.transition && !item.snapshot, `only the first line is a snapshot: ${JSON.stringify(item)}`);
    return item.transition;
  });
  const sequences = transitions.map((tr) => Number(tr.sequence));
  assert.deepEqual(
    sequences,
    sequences.map((_, i) => Number(first!.snapshot!.sequence) + 1 + i),
    'sequence numbers follow the snapshot with no gap',
  );
  assert.equal(sequences.at(-1), status.sequence, 'the stream ends at the sequence GetStatus reports');
  const moves = (id: number) => transitions.filter((tr) => tr.worker.id === id).map((tr) => `${tr.fromState ?? 'new'}>${tr.toState}`);
  const newIds = result.workers.map((w) => w.id);
  for (const id of newIds) {
    assert.deepEqual(moves(id), ['new>WORKER_STATE_STARTING', 'WORKER_STATE_STARTING>WORKER_STATE_READY'], `new worker ${id}`);
  }
  for (const id of oldIds) {
    assert.deepEqual(moves(id), ['WORKER_STATE_READY>WORKER_STATE_DRAINING', 'WORKER_STATE_DRAINING>WORKER_STATE_EXITED'], `old worker ${id}`);
  }
  assert.equal(transitions.length, 2 * newIds.length + 2 * oldIds.length);
  // Replaying the stream gives the workers GetStatus lists, in the same states.
  const replayed = new Map<number, { pid: number; state: string }>();
  for (const w of first!.snapshot.workers) replayed.set(w.id, { pid: w.pid, state: w.state });
  for (const tr of transitions) {
    if (tr.toState === 'WORKER_STATE_EXITED') replayed.delete(tr.worker.id);
    else replayed.set(tr.worker.id, { pid: tr.worker.pid, state: tr.toState });
  }
  assert.deepEqual(
    [...replayed.entries()].sort(([a], [b]) => a - b),
    // GetStatus lists workers in the order they were handed out, which spares can make 4, 3.
    status.workers.map((w) => [w.id, { pid: w.pid, state: WorkerState[w.state] }] as const).sort(([a], [b]) => a - b),
  );
});

test('liveswap --watch --json | head -1 ends quietly; a master that vanishes is one line and exit 1', async (t) => {
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(await freePort()) } });
  t.after(() => master.stop());
  const errFile = path.join(tempDir(), 'watch.err');
  const pipeline = spawn(
    'bash',
    ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" --watch --json --socket "${master.socket}" 2>"${errFile}" | head -1; echo "status $?" >&2`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  pipeline.stdout.on('data', (chunk) => (out += chunk));
  pipeline.stderr.on('data', (chunk) => (err += chunk));
  const pipelineExit = new Promise<number | null>((resolve) => pipeline.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (isAlive(pipeline.pid!)) pipeline.kill('SIGKILL');
    await pipelineExit;
  });
  await waitFor('head to print the snapshot', () => out.includes('\n'));
  // The watcher learns that head is gone at its next write: the upgrade's first event.
  await master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(await withDeadline('the pipeline to end', pipelineExit, 5000), 0);
  assert.equal(err, 'status 0\n', 'the watcher exited 0 (pipefail)');
  assert.equal(fs.readFileSync(errFile, 'utf8'), '', 'and wrote nothing on stderr');
  assert.equal(out.split('\n').length, 2);
  assert.ok((JSON.parse(out) as JsonItem).snapshot);

  // Now the master dies without a goodbye (SIGKILL): the watcher fails with one line.
  const watcher = await runCliWhile(['--watch', '--json', ...master.via], () => process.kill(master.pid, 'SIGKILL'));
  assert.equal(watcher.code, 1, watcher.stderr);
  assert.equal(watcher.stderr, `liveswap: lost the master at unix:${master.socket}: connection dropped\n`);
  assert.ok(watcher.stdout.startsWith('{"snapshot":'));
});

/** Runs the CLI, and once it has printed its first line, does `action`; resolves when the CLI exits. */
async function runCliWhile(args: string[], action: () => void) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    await waitFor('the first line', () => stdout.includes('\n'));
    action();
    return { code: await withDeadline(`liveswap ${args.join(' ')} to exit`, code, 10_000), stdout, stderr };
  } finally {
    if (isAlive(child.pid!)) child.kill('SIGKILL');
  }
}
