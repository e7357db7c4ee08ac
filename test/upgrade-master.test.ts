/**
 * --upgrade-master under live traffic (issue 22's "done when"): 32
 * keep-alive and 32 connection-close clients, 8 slow requests in flight and
 * a control client calling all along; the master moves to another Node line
 * without a failed request. The first pid (what a supervisor watches) stays
 * alive as the keeper; the old master's workers are gone; SIGTERM to the
 * keeper stops the new master gracefully, and nothing is left behind.
 * A successor that cannot start changes nothing and says why.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveswapClientError } from '../src/client/index.js';
import { CONTROL_DEADLINE_MS, masterUpgradeUnderLoad, SLOW_REQUESTS } from './helpers/master-upgrade.js';
import { freePort, get, startLoad } from './helpers/net.js';
import { nodeOfAnotherLine } from './helpers/node-lines.js';
import { fixture, tempDir } from './helpers/paths.js';
import { childPids } from './helpers/proc-tree.js';
import { runCli, spawnCli, startMaster } from './helpers/processes.js';
import { expectGone, isAlive, waitFor, withDeadline } from './helpers/wait.js';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

test('--upgrade-master --node <another line> under load: 0 failed, 8/8 slow answered, control answering, 0 orphans', async (t) => {
  const run = await masterUpgradeUnderLoad(t);
  const { master, other, before, after, stats, control, watchEnd } = run;
  assert.equal(run.cli.code, 0, run.cli.stderr);
  assert.match(run.cli.stdout, new RegExp(`master upgraded in \\d+ ms: pid ${master.pid} → pid \\d+ \\(Node ${other.version.replace(/\./g, '\\.')}\\)`));
  t.diagnostic(
    `${stats.ok} requests, ${stats.failed} failed; slow ${run.slowAnswered}/${SLOW_REQUESTS}; control ${control.ok} calls, ${control.failed.length} failed; ` +
      `master ${master.pid} (${before.nodeVersion}) → ${after.masterPid} (${after.nodeVersion})`,
  );
  assert.equal(stats.failed, 0, `failed requests: ${JSON.stringify(stats.errors)}`);
  assert.ok(stats.ok > 0);
  assert.equal(run.slowAnswered, SLOW_REQUESTS, `slow requests: ${JSON.stringify(run.slowReplies)}`);
  assert.deepEqual(control.failed, [], `every control call answered within its ${CONTROL_DEADLINE_MS} ms deadline`);
  assert.ok(control.ok > 0);
  assert.ok(watchEnd instanceof LiveswapClientError, String(watchEnd));
  assert.match(watchEnd.message, /reconnect/);
  assert.equal(watchEnd.masterReplaced, true, 'the trailing metadata says the master was replaced');

  assert.equal(after.nodeVersion, other.version, 'the new master reports its Node version');
  assert.notEqual(after.masterPid, master.pid);
  assert.equal(after.keeperPid, master.pid, 'the first process keeps the place');
  assert.equal(after.masterUpgrades, 1);
  assert.equal(after.generation, before.generation, 'the same release, the same generation');
  assert.deepEqual(after.workers.map((w) => w.nodeVersion), [other.version, other.version]);
  assert.ok(isAlive(master.pid), 'the pid a supervisor started is alive');
  assert.deepEqual(childPids(master.pid), [after.masterPid], 'the keeper has one child: the new master');
  for (const w of before.workers) assert.equal(isAlive(w.pid), false, `old worker ${w.pid}`);

  // The supervisor stops the service: SIGTERM to its pid drains the new master.
  const newMaster = after.masterPid;
  const newWorkers = after.workers.map((w) => w.pid);
  master.child.kill('SIGTERM');
  assert.equal(await withDeadline('the keeper to exit after SIGTERM', master.exited, 20_000), 0);
  await expectGone([newMaster, ...newWorkers, ...master.workerPids()]);
});

test('--upgrade-master with a successor that cannot start changes nothing and says why', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const before = await master.client.status();
  const workers = before.workers.map((w) => w.pid);

  const notNode = await runCli(['--upgrade-master', '--node', '/bin/false', ...master.via]);
  assert.equal(notNode.code, 1, notNode.stderr);
  assert.match(notNode.stderr, /node \/bin\/false is not a Node\.js binary/);

  // A binary that answers --version but cannot run liveswap: the successor starts and dies.
  const broken = path.join(tempDir(), 'node');
  fs.writeFileSync(broken, `#!/bin/sh\n[ "$1" = --version ] && exec "${process.execPath}" --version\necho "this node cannot start liveswap" >&2\nexit 3\n`, { mode: 0o755 });
  const dies = await runCli(['--upgrade-master', '--node', broken, ...master.via]);
  assert.equal(dies.code, 1, dies.stderr);
  assert.match(dies.stderr, /upgrade-master failed, this master carries on unchanged: the successor \(pid \d+, .*\) exited with code 3 before it was ready/);

  const after = await master.client.status();
  assert.equal(after.masterPid, master.pid);
  assert.equal(after.keeperPid, 0);
  assert.equal(after.operation, '');
  assert.deepEqual(after.workers.map((w) => w.pid), workers, 'the same workers serve');
  assert.equal((await get(port)).body, 'v1');
  // The successor is gone, and only the master's own workers and spares are its children.
  const children = childPids(master.pid);
  assert.ok(workers.every((pid) => children.includes(pid)));
  assert.equal(children.length, workers.length + after.spares);
});

test('a second --upgrade-master goes through the keeper: the first pid stays, the replaced master and its workers leave; --watch follows both', async (t) => {
  const other = nodeOfAnotherLine();
  const port = await freePort();
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const master = await startMaster(fixture('v1.js'), {
    forks: 2,
    env: { APP_PORT: String(port) },
    args: ['--metrics-port', String(metricsPort), '--health-port', String(healthPort)],
  });
  t.after(() => master.stop());
  const load = startLoad(port, { keepAlive: 4, close: 4 });
  const watcher = spawnCli(t, ['--watch', '--json', ...master.via]);
  const snapshots = () =>
    watcher
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"snapshot"'))
      .map((line) => (JSON.parse(line) as { snapshot: { workers: { pid: number }[] } }).snapshot.workers.map((w) => w.pid));
  await waitFor('the watcher’s first snapshot', () => snapshots().length === 1);

  const first = await runCli(['--upgrade-master', '--node', other.path, ...master.via], { timeoutMs: 60_000 });
  assert.equal(first.code, 0, first.stderr);
  const middle = await master.client.status();
  const second = await runCli(['--upgrade-master', ...master.via], { timeoutMs: 60_000 });
  assert.equal(second.code, 0, second.stderr);
  await expectGone([middle.masterPid, ...middle.workers.map((w) => w.pid)]);
  const stats = await load.stop();

  const last = await master.client.status();
  assert.equal(stats.failed, 0, JSON.stringify(stats.errors));
  assert.equal(last.keeperPid, master.pid);
  assert.equal(last.masterUpgrades, 2);
  assert.equal(last.nodeVersion, other.version, 'without --node, the successor runs on its predecessor’s Node');
  // The second handover went through the keeper, the probe and metrics ports with it.
  assert.equal((await get(healthPort, '/readyz')).status, 200);
  assert.equal((await get(metricsPort, '/metrics')).status, 200);
  // The replaced master has exited (expectGone counts a zombie as gone); the keeper reaps it when its event loop next turns.
  await waitFor('the keeper to have only the current master as its child', () => childPids(master.pid).join() === String(last.masterPid), {
    timeoutMs: 5_000,
  }).catch(() => assert.deepEqual(childPids(master.pid), [last.masterPid]));

  // The watcher went on with each successor: a line on stderr, then that master's snapshot.
  await waitFor('a snapshot from each master', () => snapshots().length === 3);
  assert.equal(watcher.stderr().match(/the master was replaced \(upgrade-master\); following its successor/g)?.length, 2, watcher.stderr());
  assert.deepEqual(snapshots()[2]!.sort(), last.workers.map((w) => w.pid).sort(), 'the last snapshot is the last master’s workers');
  assert.equal(isAlive(watcher.child.pid!), true);
  watcher.child.kill('SIGTERM');
  assert.equal((await withDeadline('the watcher to exit on SIGTERM', watcher.exited, 5000)).code, 0);
});

test('--upgrade-master hands over the metrics and health-probe ports: probes on new and kept-alive connections all answer 200 throughout', async (t) => {
  const [port, metricsPort, healthPort] = [await freePort(), await freePort(), await freePort()];
  const master = await startMaster(fixture('v1.js'), {
    forks: 2,
    env: { APP_PORT: String(port) },
    args: ['--metrics-port', String(metricsPort), '--health-port', String(healthPort)],
  });
  t.after(() => master.stop());
  const before = await master.client.status();

  // As a kubelet and a scraper do: a new connection each time, every 20 ms, for as long as the upgrade runs (at most 3,000
  // rounds); and as a load balancer's checker does, on one kept-alive connection.
  const keptAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => keptAlive.destroy());
  const answers = new Map<string, number>();
  let probing = true;
  const prober = (async () => {
    for (let round = 0; probing && round < 3000; round++) {
      for (const [what, probePort, path, agent] of [
        ['readyz', healthPort, '/readyz', false],
        ['metrics', metricsPort, '/metrics', false],
        ['readyz kept alive', healthPort, '/readyz', keptAlive],
      ] as const) {
        const outcome = await get(probePort, path, agent, 2000).then(
          (reply) => `${what} ${reply.status}`,
          (error: Error) => `${what} failed: ${error.message}`,
        );
        answers.set(outcome, (answers.get(outcome) ?? 0) + 1);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const upgraded = await runCli(['--upgrade-master', ...master.via], { timeoutMs: 60_000 });
  // The first master stays on as the keeper, holding no port: its workers are gone.
  await expectGone(before.workers.map((w) => w.pid));
  const afterRounds = (answers.get('readyz 200') ?? 0) + 20;
  await waitFor('20 more probe rounds with the successor alone', () => (answers.get('readyz 200') ?? 0) >= afterRounds, { timeoutMs: 10_000 });
  probing = false;
  await prober;
  assert.equal(upgraded.code, 0, upgraded.stderr);

  const after = await master.client.status();
  assert.notEqual(after.masterPid, before.masterPid);
  assert.deepEqual([...answers.keys()].sort(), ['metrics 200', 'readyz 200', 'readyz kept alive 200'], JSON.stringify(Object.fromEntries(answers)));
  assert.ok(answers.get('readyz 200')! >= 40, JSON.stringify(Object.fromEntries(answers)));
  assert.match((await get(metricsPort, '/metrics')).body, /^liveswap_/m);
});

test('a master embedded in an application cannot replace its process: FAILED_PRECONDITION', async (t) => {
  const { default: liveswap } = await import('../src/index.js');
  const port = await freePort();
  process.env.APP_PORT = String(port);
  const ls = await liveswap({ target: fixture('v1.js'), forks: 1, control: false, logLevel: 'silent', workerOutput: 'ignore' });
  t.after(() => ls.close());
  await assert.rejects(ls.master.upgradeMaster(), /only a master started by the liveswap CLI \(liveswap -s\) can replace its own process/);
});
