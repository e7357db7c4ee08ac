/**
 * One operation at a time: while a slow upgrade runs, another Upgrade, a Kill
 * and `liveswap -u` all fail at once with ABORTED naming the upgrade in
 * progress, change nothing, and the first upgrade still completes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { UpgradeResponse } from '../src/client/index.js';
import { freePort, get } from './helpers/net.js';
import { fixture, tempDir } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { expectGrpcError } from './helpers/grpc.js';
import { lines } from './helpers/proc-tree.js';
import { waitFor, withDeadline } from './helpers/wait.js';

test('Upgrade, Kill and the CLI are ABORTED while an upgrade runs; the first upgrade completes', async (t) => {
  const port = await freePort();
  // The new workers boot only once the gate file exists: the first upgrade runs until the test opens it.
  const gate = path.join(tempDir(), 'boot-gate');
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port), BOOT_GATE: gate } });
  t.after(() => master.stop());
  const before = await master.client.status();
  assert.equal(before.operation, '');

  let firstDone = false;
  const first = master.client.upgrade({ target: fixture('slow-boot.js'), readyTimeoutMs: 60_000 });
  const firstSettled = first.then(
    (result) => ({ result, error: undefined }),
    (error: Error) => ({ result: undefined as UpgradeResponse | undefined, error }),
  );
  void firstSettled.then(() => (firstDone = true));
  await waitFor('status() to report the upgrade in progress', async () => (await master.client.status()).operation === 'upgrade', {
    timeoutMs: 5000,
  });

  // The CLI: exit 1, one line naming the operation in progress.
  const cli = await runCli(['-u', fixture('v2.js'), ...master.via]);
  assert.equal(firstDone, false, 'the first upgrade was still running while the CLI tried (else this test proves nothing)');
  assert.equal(cli.code, 1, `exit code ${cli.code}; stderr: ${cli.stderr}`);
  const errorLines = lines(cli.stderr);
  assert.equal(errorLines.length, 1, `expected one line on stderr, got:\n${cli.stderr}`);
  assert.match(errorLines[0]!, /^liveswap: upgrade in progress\b/);
  assert.equal(cli.stdout, '');

  // A second Upgrade: rejected at once, not queued: the answer comes while the first still runs.
  // (How fast the refusal comes: npm run bench:timings.)
  await expectGrpcError(master.client.upgrade({ target: fixture('v2.js') }), status.ABORTED, /upgrade in progress/);
  assert.equal(firstDone, false, 'the second upgrade was refused while the first ran, not queued behind it');

  // Kill: also ABORTED, naming the upgrade.
  const killError = await expectGrpcError(master.client.kill(), status.ABORTED, /upgrade in progress/);
  assert.equal(firstDone, false, 'Kill was refused while the upgrade ran, not queued behind it');
  assert.equal(killError.codeName, 'ABORTED');
  assert.equal((await master.client.status()).operation, 'upgrade');

  // The first upgrade is unaffected and completes.
  fs.writeFileSync(gate, '');
  const { result, error } = await withDeadline('the first upgrade', firstSettled, 15_000);
  assert.equal(error, undefined, `the first upgrade failed: ${error?.message}`);
  assert.equal(result!.generation, 2, 'the rejected calls used no generation number');
  assert.equal(result!.target, fixture('slow-boot.js'));
  assert.equal(result!.workers.length, 2);
  const after = await master.client.status();
  assert.equal(after.operation, '');
  assert.equal(after.generation, 2);
  assert.equal(after.target, fixture('slow-boot.js'));
  assert.deepEqual(after.workers.map((w) => w.generation), [2, 2]);
  for (const worker of after.workers) assert.ok(!before.workers.some((w) => w.pid === worker.pid));
  assert.equal((await get(port)).body, 'slow-boot');

  // With the lock released, the next operation goes through.
  const kill = await master.client.kill();
  assert.equal(kill.killed, 2);
});
