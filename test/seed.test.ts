/**
 * The seed's walk-through, verbatim: index1.js on 1337 under `liveswap -s`,
 * control on the default 127.0.0.1:3000, then -u, -m, -k, -d through the real
 * CLI — with light load (keep-alive and connection-close clients) running
 * through the upgrade and not one request failing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { accepts, get, startLoad } from './helpers/net.js';
import { CLI, ROOT } from './helpers/paths.js';
import { runCli } from './helpers/processes.js';
import { expectGone, isAlive, waitFor, withDeadline } from './helpers/wait.js';

const EXAMPLES = path.join(ROOT, 'examples');
const APP_PORT = 1337;

test('seed walk-through: -s, -u under load, -m, -k, -d', async (t) => {
  const master = spawn(process.execPath, [CLI, '-s', 'index1.js'], { cwd: EXAMPLES, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  master.stdout.on('data', (chunk) => (stdout += chunk));
  master.stderr.on('data', (chunk) => (stderr += chunk));
  const masterExit = new Promise<number | null>((resolve) => master.once('exit', resolve));
  const pidsSeen = () => [...new Set([...stderr.matchAll(/worker \d+ \(pid (\d+),/g)].map((m) => Number(m[1])))];
  t.after(async () => {
    if (isAlive(master.pid!)) master.kill('SIGKILL');
    for (const pid of pidsSeen()) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });

  await waitFor('the master to come up', () => /master pid \d+ up/.test(stderr), { timeoutMs: 20_000 });
  assert.match(stderr, /control service listening on 127\.0\.0\.1:3000/);
  assert.match(stdout, /\[worker 1 g1\] Server running at http:\/\/127\.0\.0\.1:1337\//);
  assert.equal((await get(APP_PORT)).body, 'Hello World\n');

  // -u under light steady load.
  const load = startLoad(APP_PORT, { keepAlive: 4, close: 4 });
  await waitFor('load to be flowing', async () => (await get(APP_PORT)).status === 200);
  const upgrade = await runCli(['-u', './index2.js'], { cwd: EXAMPLES });
  const stats = await load.stop();
  assert.equal(upgrade.code, 0, upgrade.stderr);
  assert.match(upgrade.stdout, /upgraded to generation 2 \(.*index2\.js\) in \d+ ms: 2 worker\(s\) ready/);
  assert.match(upgrade.stdout, /worker 3 \(pid \d+, gen 2\) starting → ready/);
  assert.deepEqual(stats.errors, {}, `failed requests during the upgrade: ${JSON.stringify(stats.errors)}`);
  assert.equal(stats.failed, 0);
  assert.ok(stats.bodies['Hello World\n']! > 0, 'load saw the old version');
  assert.ok(stats.bodies['Not Found\n']! > 0, 'load saw the new version');
  for (let i = 0; i < 6; i++) {
    const reply = await get(APP_PORT);
    assert.equal(reply.status, 404);
    assert.equal(reply.body, 'Not Found\n');
  }

  // -m: delivered to every worker.
  const message = await runCli(['-m', 'hello'], { cwd: EXAMPLES });
  assert.equal(message.code, 0, message.stderr);
  assert.match(message.stdout, /delivered to 2 worker\(s\)/);

  // -k: new pids, same code.
  const before = JSON.parse((await runCli(['--status', '--json'])).stdout);
  const kill = await runCli(['-k'], { cwd: EXAMPLES });
  assert.equal(kill.code, 0, kill.stderr);
  const after = JSON.parse((await runCli(['--status', '--json'])).stdout);
  const pidsBefore = before.workers.map((w: { pid: number }) => w.pid);
  const pidsAfter = after.workers.map((w: { pid: number }) => w.pid);
  assert.equal(pidsAfter.length, 2);
  for (const pid of pidsAfter) assert.ok(!pidsBefore.includes(pid), 'kill respawned new processes');
  assert.equal((await get(APP_PORT)).body, 'Not Found\n');

  // -d: workers stopped, master exits 0, the app port goes quiet.
  const die = await runCli(['-d'], { cwd: EXAMPLES });
  assert.equal(die.code, 0, die.stderr);
  assert.equal(await withDeadline('master exit', masterExit, 10_000), 0);
  await expectGone([master.pid!, ...pidsSeen()]);
  assert.equal(await accepts(APP_PORT), false, 'nothing answers on 1337 after -d');
});
