/**
 * Acceptance: WebSockets. liveswap leaves upgraded sockets to the app, so the
 * docs/upgrade.md gives each library a drain recipe (test/fixtures/apps/{ws,socket.io}
 * carry the very lines it shows). With the recipe, clients move to the new
 * workers without one abnormal close (1006); without it they stay on the old
 * code until the drain timeout, then end with 1006, and the Upgrade and
 * `--status` say the workers were killed at the timeout.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkRecipeCutover, everyClientOnV2, SLOW_MS, upgradeUnderLoad } from './helpers/acceptance.js';
import { get } from './helpers/net.js';
import { fixture, ROOT } from './helpers/paths.js';
import { runCli } from './helpers/processes.js';
import { SOCKET_IO_CLIENT_OPTIONS, socketIoFleet, wsFleet } from './helpers/socket-clients.js';
import { waitFor } from './helpers/wait.js';

const CLIENTS = 16;
const slow = async (port: number, tag: string) => (await get(port, `/slow?ms=${SLOW_MS}&tag=${tag}`)).body;

const RECIPES = [
  // ws: the recipe closes with 1001 (going away).
  { app: 'ws', fleet: wsFleet, closeCode: 1001 },
  // socket.io: io.close() closes the WebSocket with no status code (1005); the client reconnects.
  { app: 'socket.io', fleet: socketIoFleet, closeCode: 1005 },
];

for (const { app, fleet, closeCode } of RECIPES) {
  test(`${app} with the recipe of docs/upgrade.md: ${CLIENTS} clients move to v2 with no 1006 close`, async (t) => {
    const run = await upgradeUnderLoad(t, {
      v1: fixture(`apps/${app}/v1.js`),
      v2: fixture(`apps/${app}/v2.js`),
      load: (port) => fleet(port, CLIENTS),
      flowing: (clients) => clients.on('v1') === CLIENTS,
      slow,
      settle: everyClientOnV2,
    });
    checkRecipeCutover(t, run);
    const closes = run.load.clients.reduce((n, c) => n + c.closes.length, 0);
    assert.deepEqual(run.load.closeCodes(), { [closeCode]: closes }, `every close was the recipe's ${closeCode}`);
  });
}

test('ws without a recipe: the clients stay on v1 until the drain timeout, then end with 1006; the Upgrade and --status say so', async (t) => {
  const DRAIN_TIMEOUT_MS = 2000;
  const run = await upgradeUnderLoad(t, {
    v1: fixture('apps/ws/no-recipe-v1.js'),
    v2: fixture('apps/ws/no-recipe-v2.js'),
    args: ['--drain-timeout', String(DRAIN_TIMEOUT_MS)],
    load: (port) => wsFleet(port, CLIENTS),
    flowing: (fleet) => fleet.on('v1') === CLIENTS,
    settle: (fleet) => waitFor('every client to lose its v1 connection', () => fleet.clients.every((c) => c.closes.length > 0)),
  });
  const fleet = run.load;
  const closedAt = fleet.clients.flatMap((c) => c.closedAt);
  t.diagnostic(`closes ${JSON.stringify(fleet.closeCodes())}, the first ${Math.min(...closedAt) - run.calledAt} ms after the upgrade call; upgrade ${run.returnedAt - run.calledAt} ms, ${run.upgrade.killedAtDrainTimeout} killed at the drain timeout`);

  assert.deepEqual(fleet.closeCodes(), { 1006: CLIENTS }, 'each client lost its connection once, without a close frame');
  assert.ok(Math.min(...closedAt) >= run.calledAt + DRAIN_TIMEOUT_MS, 'no connection ended before the drain timeout');
  assert.equal(run.upgrade.killedAtDrainTimeout, 2);
  await waitFor('the clients to reconnect to v2', () => fleet.on('v2') === CLIENTS);

  const status = await runCli(['--status', ...run.master.via]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /killed at the drain timeout: 2 worker\(s\) since the master started; last: worker \d+ \(pid \d+, gen 1\)/);
  const json = JSON.parse((await runCli(['--status', '--json', ...run.master.via])).stdout);
  assert.equal(json.killedAtDrainTimeout, 2);
  assert.equal(json.lastKilledAtDrainTimeout.reason, 'killed at the drain timeout');
});

/** The recipe lines of a fixture app: between `// recipe: NAME` and `// end of recipe`, unindented. */
function recipeLines(file: string): string {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((line) => /\/\/ recipe: /.test(line));
  const end = lines.findIndex((line) => /\/\/ end of recipe/.test(line));
  const block = lines.slice(start + 1, end);
  const indent = Math.min(...block.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return block.map((line) => line.slice(indent)).join('\n');
}

test('docs/upgrade.md shows the recipes the tests run', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'docs', 'upgrade.md'), 'utf8');
  for (const app of ['ws', 'socket.io']) {
    const recipe = recipeLines(fixture(`apps/${app}/app.js`));
    assert.ok(recipe.length > 0, `${app}: no recipe block in the fixture`);
    assert.ok(readme.includes(recipe), `docs/upgrade.md does not show the ${app} recipe as the fixture has it:\n${recipe}`);
  }
  assert.deepEqual(SOCKET_IO_CLIENT_OPTIONS, { transports: ['websocket'], reconnectionDelay: 250 });
  assert.ok(readme.includes("io(url, { transports: ['websocket'], reconnectionDelay: 250 })"), 'docs/upgrade.md shows the socket.io client options the test uses');
});
