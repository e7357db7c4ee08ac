/**
 * A worker that dies without being asked to is respawned on the current
 * code, and the crash shows in the status.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { expectGone, waitFor } from './helpers/wait.js';

test('a worker killed from outside is respawned, and the crash is counted', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const before = await master.client.status();
  const victim = before.workers[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await expectGone([victim.pid]);

  const after = await waitFor('the pool to be back at 2 ready workers', async () => {
    const s = await master.client.status();
    return s.counts!.ready === 2 && s.workers.every((w) => w.pid !== victim.pid) ? s : undefined;
  });
  assert.equal(after.restarts, 1);
  assert.equal(after.generation, before.generation);
  const replacement = after.workers.find((w) => w.id !== before.workers[1]!.id)!;
  assert.equal(replacement.restarts, 1);
  assert.equal(replacement.target, fixture('v1.js'));
  assert.match(master.stderr(), new RegExp(`worker ${victim.id} crashed: was killed by SIGKILL; respawning in 100 ms`));
  assert.equal((await get(port)).body, 'v1');
});
