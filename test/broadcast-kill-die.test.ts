/**
 * Broadcast reaches every worker as the plain value (each worker proves it on
 * its stdout); liveswap's own messages never reach user code; Kill respawns
 * on the same code; Die stops master and workers and the app goes quiet.
 */
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectGrpcError } from './helpers/grpc.js';
import { accepts, freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { expectGone, isAlive, withDeadline } from './helpers/wait.js';

test('broadcast reaches every worker as the plain value', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 3, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const result = await master.client.broadcast('hello');
  assert.equal(result.delivered, 3);
  assert.equal(new Set(result.workerIds).size, 3);
  for (const id of result.workerIds) await master.waitForStdout(new RegExp(`\\[worker ${id} g1\\] received "hello"`));

  const structured = { deploy: 'v1.2.3', flags: [1, true, null], nested: { a: 'b' } };
  const second = await master.client.broadcast(structured);
  assert.equal(second.delivered, 3);
  for (const id of second.workerIds) {
    await master.waitForStdout(new RegExp(`\\[worker ${id} g1\\] received ${escape(JSON.stringify(structured))}`));
  }

  // A user value shaped like our own envelope is still just a value: nobody drains.
  const lookalike = { liveswap: 'drain', timeoutMs: 1 };
  const pids = (await master.client.status()).workers.map((w) => w.pid);
  const third = await master.client.broadcast(lookalike);
  assert.equal(third.delivered, 3);
  for (const id of third.workerIds) {
    await master.waitForStdout(new RegExp(`\\[worker ${id} g1\\] received ${escape(JSON.stringify(lookalike))}`));
  }
  const after = await master.client.status();
  assert.deepEqual(after.workers.map((w) => w.pid), pids);
  assert.equal(after.counts!.ready, 3);

  // Through the CLI: -m sends the string, --message-json a JSON value.
  const cli = await runCli(['-m', 'from the cli', ...master.via]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^delivered to 3 worker\(s\) \(ids \d+, \d+, \d+\)\n$/);
  await master.waitForStdout(/received "from the cli"/);
  const cliJson = await runCli(['--message-json', '{"n":42}', ...master.via]);
  assert.equal(cliJson.code, 0, cliJson.stderr);
  await master.waitForStdout(/received \{"n":42\}/);
});

test("liveswap's own IPC messages never reach user code", async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  // An upgrade sends drain envelopes to both old workers.
  await master.client.upgrade({ target: fixture('v2.js') });
  assert.equal((await get(port)).body, 'v2');
  assert.doesNotMatch(master.stdout(), /received/, 'no internal message surfaced on process.on("message")');
});

test('broadcast of anything but a JSON value is INVALID_ARGUMENT', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  await expectGrpcError(master.client.broadcast(undefined), status.INVALID_ARGUMENT, /must be a JSON value/);
  // Not JSON at all: refused by the client before anything is sent
  // (a request with no message at all is refused by the master: see proto-contract.test).
  for (const notJson of [() => 1, 10n]) {
    await expectGrpcError(master.client.broadcast(notJson), status.INVALID_ARGUMENT, /must be a JSON value/);
  }
});

test('kill respawns every worker on the same code', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const before = await master.client.status();
  const result = await master.client.kill();
  assert.equal(result.killed, 2);
  assert.equal(result.workers.length, 2);
  const oldPids = before.workers.map((w) => w.pid);
  await expectGone(oldPids);
  const after = await master.client.status();
  assert.equal(after.counts!.ready, 2);
  assert.equal(after.target, before.target);
  assert.equal(after.generation, before.generation);
  for (const worker of after.workers) {
    assert.ok(!oldPids.includes(worker.pid), `worker ${worker.pid} is new`);
    assert.equal(worker.target, fixture('v1.js'));
  }
  assert.equal((await get(port)).body, 'v1');
});

test('die stops the workers, the master exits 0 and the app port goes quiet', async () => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  const pids = (await master.client.status()).workers.map((w) => w.pid);
  assert.equal(pids.length, 2);
  assert.equal((await get(port)).body, 'v1');
  const result = await runCli(['-d', ...master.via]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /master stopped: 2 worker\(s\) stopped, 0 killed/);
  assert.equal(await withDeadline('master exit', master.exited, 10_000), 0);
  await expectGone([master.pid, ...pids]);
  assert.equal(await accepts(port), false);
  assert.ok(!isAlive(master.pid));
  await master.stop(); // already gone: only checks every pid it ever logged
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
