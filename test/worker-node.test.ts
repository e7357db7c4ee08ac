/**
 * `-u FILE --node PATH`: a release runs on another Node.js binary (the
 * app moves to a new Node before the master does), and status shows each
 * worker's Node version. A path that is not a Node binary changes nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { get, freePort } from './helpers/net.js';
import { nodeOfAnotherLine } from './helpers/node-lines.js';
import { fixture } from './helpers/paths.js';
import { executable } from './helpers/proc-tree.js';
import { runCli, startMaster } from './helpers/processes.js';

test('-u --node runs the new workers on that binary; Kill keeps them there; status shows every worker’s version', async (t) => {
  const other = nodeOfAnotherLine();
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const before = await master.client.status();
  assert.equal(before.nodeVersion, process.version);
  assert.deepEqual(before.workers.map((w) => w.nodeVersion), [process.version, process.version]);

  const upgraded = await runCli(['-u', fixture('v2.js'), '--node', other.path, ...master.via]);
  assert.equal(upgraded.code, 0, upgraded.stderr);
  const after = await master.client.status();
  assert.equal(after.nodeVersion, process.version, 'the master stays on its own Node');
  assert.deepEqual(after.workers.map((w) => w.nodeVersion), [other.version, other.version]);
  for (const worker of after.workers) assert.equal(executable(worker.pid), fs.realpathSync(other.path), `worker ${worker.id}`);
  assert.equal((await get(port)).body, 'v2');

  const killed = await master.client.kill();
  for (const worker of killed.workers) {
    assert.equal(worker.nodeVersion, other.version);
    assert.equal(executable(worker.pid), fs.realpathSync(other.path), `respawned worker ${worker.id}`);
  }
  const text = await runCli(['--status', ...master.via]);
  assert.match(text.stdout, new RegExp(`master pid ${master.pid} \\(Node ${process.version}\\)`));
  assert.match(text.stdout, new RegExp(`workers on another Node: ${other.version.replace(/\./g, '\\.')} \\(worker \\d+, \\d+\\)`));
});

test('-u --node with a binary that is not Node, or not there, is refused and changes nothing', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const before = await master.client.status();

  const notNode = await runCli(['-u', fixture('v2.js'), '--node', '/bin/false', ...master.via]);
  assert.equal(notNode.code, 1, notNode.stderr);
  assert.match(notNode.stderr, /node \/bin\/false is not a Node\.js binary: `false --version` exited with 1/);
  const missing = await runCli(['-u', fixture('v2.js'), '--node', '/nonexistent/node', ...master.via]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /node \/nonexistent\/node is not an executable file \(ENOENT\)/);

  const after = await master.client.status();
  assert.equal(after.generation, before.generation);
  assert.deepEqual(after.workers.map((w) => w.pid), before.workers.map((w) => w.pid));
  assert.equal((await get(port)).body, 'v1');
});
