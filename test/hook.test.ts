/**
 * The pre-upgrade hook, through a real master started with `liveswap -s
 * --pre-upgrade HOOK`: both hook shapes allow, and every way a hook can say
 * no — a callback error, a rejected promise, a synchronous throw, a hang past
 * --hook-timeout — vetoes with FAILED_PRECONDITION, the hook's reason, and
 * nothing changed: same workers, same generation, the old code still serving.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { status } from '@grpc/grpc-js';
import { WorkerState, type GetStatusResponse } from '../src/client/index.js';
import { freePort, get } from './helpers/net.js';
import { fixture, tempDir } from './helpers/paths.js';
import { runCli, startMaster, type MasterProcess } from './helpers/processes.js';
import { expectGrpcError } from './helpers/grpc.js';
import { childPids, hookRunnerPids, lines } from './helpers/proc-tree.js';
import { GiveUp, expectGone, isAlive, waitFor, withDeadline } from './helpers/wait.js';

/** A hook module written for one test, in a private directory removed afterwards. */
function writeHook(t: TestContext, name: string, source: string): string {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  fs.writeFileSync(file, source);
  return file;
}

async function startWithHook(t: TestContext, hook: string, extraArgs: string[] = []) {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), {
    forks: 2,
    env: { APP_PORT: String(port) },
    args: ['--pre-upgrade', path.isAbsolute(hook) ? hook : fixture(hook), ...extraArgs],
  });
  t.after(() => master.stop());
  assert.equal((await get(port)).body, 'v1');
  return { master, port };
}

/** What must not change when an upgrade is vetoed. */
function poolShape(s: GetStatusResponse) {
  return {
    generation: s.generation,
    target: s.target,
    operation: s.operation,
    counts: s.counts,
    workers: s.workers
      .map((w) => ({ id: w.id, pid: w.pid, state: w.state, generation: w.generation, target: w.target }))
      .sort((a, b) => a.id - b.id),
  };
}

/**
 * Once the hook has answered, the hook runner is gone: no child of the master
 * runs it (the others are its workers and its spares), and every worker is
 * still a child.
 */
async function expectOnlyWorkerChildren(master: MasterProcess, workerPids: number[]) {
  await waitFor('the hook runner to be gone', () => (hookRunnerPids(master.pid).length === 0 ? true : undefined), { timeoutMs: 3000 }).catch(
    (error: Error) => {
      throw new Error(`${error.message}; hook runners now ${hookRunnerPids(master.pid).join(', ')}`);
    },
  );
  const children = childPids(master.pid);
  for (const pid of workerPids) assert.ok(children.includes(pid), `worker ${pid} is a child of the master`);
}

async function expectAllowed(t: TestContext, hook: string) {
  const { master, port } = await startWithHook(t, hook);
  const result = await master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(result.generation, 2);
  assert.equal(result.target, fixture('v2.js'));
  assert.equal(result.workers.length, 2);
  for (const worker of result.workers) {
    assert.equal(worker.generation, 2);
    assert.equal(worker.state, WorkerState.WORKER_STATE_READY);
  }
  for (let i = 0; i < 4; i++) assert.equal((await get(port)).body, 'v2');
  const after = await master.client.status();
  assert.equal(after.generation, 2);
  assert.equal(after.target, fixture('v2.js'));
  assert.equal(after.operation, '');
  assert.deepEqual(after.workers.map((w) => w.generation), [2, 2]);
  await expectOnlyWorkerChildren(master, after.workers.map((w) => w.pid));
}

async function expectVetoed(t: TestContext, hook: string, reason: RegExp, extraArgs: string[] = []) {
  const { master, port } = await startWithHook(t, hook, extraArgs);
  const before = await master.client.status();
  assert.equal(before.generation, 1);
  const pidsLogged = master.workerPids();

  const began = Date.now();
  const error = await expectGrpcError(master.client.upgrade({ target: fixture('v2.js') }), status.FAILED_PRECONDITION, reason);
  assert.equal(error.codeName, 'FAILED_PRECONDITION');
  assert.match(error.message, /pre-upgrade hook/);

  const after = await master.client.status();
  assert.deepEqual(poolShape(after), poolShape(before), 'a vetoed upgrade changes nothing');
  assert.equal(after.generation, 1);
  assert.equal(after.target, fixture('v1.js'));
  assert.deepEqual(master.workerPids(), pidsLogged, 'no worker was forked for the vetoed upgrade');
  for (let i = 0; i < 4; i++) assert.equal((await get(port)).body, 'v1');
  await expectOnlyWorkerChildren(master, after.workers.map((w) => w.pid));

  // The master still works after a veto: nothing is left locked.
  assert.equal((await master.client.status()).operation, '');
  return { master, elapsedMs: Date.now() - began };
}

test('hook-allow.js (callback shape) allows: the upgrade to v2 succeeds', async (t) => {
  await expectAllowed(t, 'hook-allow.js');
});

test('hook-async-allow.mjs (async shape) allows: the upgrade to v2 succeeds', async (t) => {
  await expectAllowed(t, 'hook-async-allow.mjs');
});

test('veto by callback error: FAILED_PRECONDITION with the reason, nothing changed', async (t) => {
  // The reason names v2.js: the hook saw data.target.
  await expectVetoed(t, 'hook-veto-callback.js', /smoke tests failed for v2\.js/);
});

test('veto by rejected promise: FAILED_PRECONDITION with the reason, nothing changed', async (t) => {
  await expectVetoed(t, 'hook-veto-reject.mjs', /database migration pending/);
});

test('veto by synchronous throw: FAILED_PRECONDITION with the reason, nothing changed', async (t) => {
  await expectVetoed(t, 'hook-veto-throw.js', /hook threw synchronously/);
});

test('a hook that never answers is a veto at --hook-timeout', async (t) => {
  // 3 s, not less: the master also checks the hook at start within this timeout, and that
  // starts a Node process, which takes more than a second on a loaded 2-core machine.
  const { elapsedMs } = await expectVetoed(t, 'hook-hang.js', /did not answer within 3000 ms/, ['--hook-timeout', '3000']);
  // Timers fire late under load, never early. (How soon after the timeout: npm run bench:timings.)
  assert.ok(elapsedMs >= 2950, `vetoed after ${elapsedMs} ms, before the 3000 ms hook timeout`);
});

test('a veto through the real CLI: exit 1 and one line on stderr', async (t) => {
  const { master, port } = await startWithHook(t, 'hook-veto-callback.js');
  const before = await master.client.status();
  const result = await runCli(['-u', fixture('v2.js'), ...master.via]);
  assert.equal(result.code, 1, `exit code ${result.code}; stderr: ${result.stderr}`);
  const errorLines = lines(result.stderr);
  assert.equal(errorLines.length, 1, `expected one line on stderr, got:\n${result.stderr}`);
  assert.ok(errorLines[0]!.startsWith('liveswap: pre-upgrade hook'), errorLines[0]);
  assert.match(errorLines[0]!, /smoke tests failed for v2\.js/);
  assert.equal(result.stdout, '', 'no worker transition to report for a vetoed upgrade');
  assert.deepEqual(poolShape(await master.client.status()), poolShape(before));
  assert.equal((await get(port)).body, 'v1');
});

test('a hook that exits without answering is a veto, with its stderr tail', async (t) => {
  const hook = writeHook(
    t,
    'hook-exits.js',
    `module.exports = function (data, cb) {
  console.error('checking ' + require('path').basename(data.target))
  console.error('fatal: disk full')
  process.exit(3)
}
`,
  );
  const { master } = await expectVetoed(t, hook, /pre-upgrade hook exited with code 3 without answering: fatal: disk full/);
  const error = await expectGrpcError(master.client.upgrade({ target: fixture('v2.js') }), status.FAILED_PRECONDITION, /code 3/);
  assert.deepEqual(error.stderrTail, ['checking v2.js', 'fatal: disk full'], 'the hook\'s stderr tail rides in the trailing metadata');
});

test('the hook sees the target, the previous target, the next generation, the workers and hook_data', async (t) => {
  // Vetoes with what it saw, so the test can read it back from the error.
  const hook = writeHook(t, 'hook-echo.js', 'module.exports = function (data, cb) { cb(new Error("SAW " + JSON.stringify(data))) }\n');
  const { master } = await startWithHook(t, hook);
  const before = await master.client.status();
  const error = await expectGrpcError(
    master.client.upgrade({ target: fixture('v2.js'), hookData: { ticket: 42, tags: ['a'] } }),
    status.FAILED_PRECONDITION,
    /SAW /,
  );
  const seen = JSON.parse(error.message.slice(error.message.indexOf('SAW ') + 4));
  assert.equal(seen.target, fixture('v2.js'));
  assert.equal(seen.previousTarget, fixture('v1.js'));
  assert.equal(seen.generation, 2);
  assert.deepEqual(seen.extra, { ticket: 42, tags: ['a'] });
  assert.deepEqual(
    seen.workers.map((w: { pid: number }) => w.pid).sort(),
    before.workers.map((w) => w.pid).sort(),
  );
});

test('Die while a hook hangs: the upgrade is cancelled and the hook runner stops too', async (t) => {
  // hook-hang.js, plus a marker file once the hook is running (it holds the runner's pid).
  // Default hook timeout (30 s): only Die can end this hook within the test.
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const marker = path.join(dir, 'hook-running');
  const hook = path.join(dir, 'hook-hang-marked.js');
  fs.writeFileSync(
    hook,
    `module.exports = function (data, cb) {
  require('fs').writeFileSync(${JSON.stringify(marker)}, String(process.pid))
  setInterval(() => {}, 1000) // never answers
}
`,
  );
  const { master } = await startWithHook(t, hook);
  const workerPids = (await master.client.status()).workers.map((w) => w.pid);
  const upgrade = master.client.upgrade({ target: fixture('v2.js') });
  let settled: string | undefined;
  upgrade.then(
    (reply) => (settled = `succeeded: ${JSON.stringify(reply)}`),
    (error: Error) => (settled = `failed: ${error.message}`),
  ); // the outcome is checked below
  const runner = await waitFor('the hook to be running', () => {
    // An upgrade that ended before its hook ran would leave this wait to its deadline, saying nothing.
    if (settled !== undefined) throw new GiveUp(`the upgrade ${settled} before the hook ran`);
    return fs.existsSync(marker) && Number(fs.readFileSync(marker, 'utf8'));
  });
  t.after(() => {
    if (isAlive(runner)) process.kill(runner, 'SIGKILL'); // safety net; the assertion below still fails
  });
  const children = childPids(master.pid);
  assert.ok(children.includes(runner), `the hook (pid ${runner}) runs in a child process of the master (children: ${children.join(', ')})`);
  assert.equal((await master.client.status()).operation, 'upgrade');

  const died = await master.client.die({ drainTimeoutMs: 5000 });
  assert.equal(died.stopped, 2, `Die stopped ${died.stopped} workers; the master said:\n${master.stderr()}`);
  await expectGrpcError(upgrade, status.UNAVAILABLE, /upgrade cancelled: the master is shutting down/);
  const code = await withDeadline('master exit after Die', master.exited, 10_000).catch((error: Error) => {
    throw new Error(`${error.message}; the master said:\n${master.stderr()}`);
  });
  assert.equal(code, 0, `the master exited with ${code}; it said:\n${master.stderr()}`);
  await expectGone(workerPids);
  await expectGone([runner]).catch(() => {
    assert.fail(`the pre-upgrade hook runner (pid ${runner}) outlived the master that started it`);
  });
});

test('a hook that cannot be used is refused when the master starts', async () => {
  for (const [hook, why] of [
    ['hook-syntax-error.js', /SyntaxError|Unexpected/],
    ['hook-not-a-function.js', /exports no function/],
  ] as const) {
    const result = await runCli(['-s', fixture('v1.js'), '--socket', path.join(tempDir(), 'c.sock'), '--pre-upgrade', fixture(hook)]);
    assert.equal(result.code, 1, result.stderr);
    const last = lines(result.stderr).at(-1)!;
    assert.match(last, new RegExp(`^liveswap: pre-upgrade hook ${fixture(hook).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be used: `));
    assert.match(last, why);
    assert.doesNotMatch(result.stderr, /worker \d+ \(pid/, 'no worker was forked');
  }
});
