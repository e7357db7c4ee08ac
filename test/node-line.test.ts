/**
 * The suite tests the Node line it runs on: the master, its workers and the
 * CLI all run on the test runner's own binary. The tests spawn them with
 * process.execPath and cluster forks workers with it; an installed CLI's
 * `#!/usr/bin/env node` takes the first node on PATH, so .ci/run puts each
 * line's node first there. .ci/run checks the version this test reports
 * against the line it meant to run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { executable } from './helpers/proc-tree.js';
import { spawnCli, startMaster } from './helpers/processes.js';
import { waitFor, withDeadline } from './helpers/wait.js';

test('the master, its workers and the CLI run on the test runner’s Node binary', async (t) => {
  const runner = fs.realpathSync(process.execPath);
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  assert.equal((await get(port)).body, 'v1');

  const { workers } = await master.client.status();
  assert.equal(workers.length, 2);
  assert.equal(executable(master.pid), runner, 'the master');
  for (const worker of workers) assert.equal(executable(worker.pid), runner, `worker ${worker.id}`);

  // The CLI run as an installed one is: through its shebang.
  const watcher = spawnCli(t, ['--watch', '--json', ...master.via], { viaShebang: true });
  await waitFor('the CLI to print the snapshot', () => watcher.stdout().includes('\n'));
  assert.equal(
    executable(watcher.child.pid!),
    runner,
    `the CLI's #!/usr/bin/env node found another node first on PATH (.ci/run puts the runner's directory first)`,
  );
  watcher.child.kill('SIGTERM');
  assert.deepEqual(await withDeadline('the CLI to exit after SIGTERM', watcher.exited, 5000), { code: 0, signal: null });

  t.diagnostic(`master, workers and CLI on node ${process.version}`);
});
