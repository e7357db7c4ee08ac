/**
 * The HTTP/2 drain (rules 4 and 5 in src/worker/drain.ts) through real
 * upgrades: node:http2 apps, plain and TLS (and TLS with allowHTTP1, which
 * follows the HTTP/1.1 rules too), under load from HTTP/2 clients that keep
 * their sessions open, with slow streams in flight when the drain starts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { test, type TestContext } from 'node:test';
import { makeCerts } from './helpers/certs.js';
import { startH2Load, type H2Load } from './helpers/h2.js';
import type { Load, LoadStats } from './helpers/load.js';
import { freePort, get, startLoad } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster, type MasterProcess } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

/** Far above any drain these tests expect: an upgrade held to it would show. */
const DRAIN_TIMEOUT_MS = 30_000;
const certs = makeCerts();
const ca = fs.readFileSync(certs.ca);

async function h2Master(t: TestContext, { secure = false, allowHttp1 = false } = {}) {
  const port = await freePort();
  const env: Record<string, string> = { APP_PORT: String(port) };
  if (secure) Object.assign(env, { TLS_CERT: certs.serverCert, TLS_KEY: certs.serverKey, ALLOW_HTTP1: allowHttp1 ? '1' : '0' });
  const master = await startMaster(fixture('h2/v1.js'), { env, args: ['--drain-timeout', String(DRAIN_TIMEOUT_MS)] });
  t.after(() => master.stop());
  const load = startH2Load(`${secure ? 'https' : 'http'}://127.0.0.1:${port}`, { clients: 6, concurrency: 2, options: secure ? { ca } : {} });
  t.after(() => load.stop());
  return { master, port, load };
}

/** Sends slow requests (3 s); resolves once every one is in a worker of generation 1, with their answers to come. */
async function slowRequests(master: MasterProcess, send: (path: string) => Promise<string>, prefix: string, count: number) {
  const tags = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  const answers = Promise.all(tags.map((tag) => send(`/slow?ms=3000&tag=${tag}`)));
  answers.catch(() => {}); // awaited by the caller, after the upgrade
  await waitFor(`the ${prefix} slow requests to reach the old workers`, () =>
    tags.every((tag) => new RegExp(`\\[worker \\d+ g1\\] slow request ${tag} started`).test(master.stdout())),
  );
  return { answers };
}

/** Upgrades to v2, then lets the load run until it has sent `after` more requests. */
async function upgradeToV2(t: TestContext, master: MasterProcess, loads: Load[], after = 20) {
  const upgrade = await master.client.upgrade({ target: fixture('h2/v2.js') });
  const returnedAt = Date.now();
  for (const load of loads) {
    await waitFor('requests after the upgrade', () => load.peek().filter((reply) => reply.sentAt > returnedAt).length >= after);
  }
  t.diagnostic(`upgrade ${upgrade.durationMs} ms, killed at the drain timeout: ${upgrade.killedAtDrainTimeout}`);
  assert.equal(upgrade.killedAtDrainTimeout, 0);
  assert.ok(upgrade.durationMs < DRAIN_TIMEOUT_MS / 3, `the upgrade took ${upgrade.durationMs} ms: a drain waited for its timeout`);
  return returnedAt;
}

function assertServed(stats: LoadStats, returnedAt: number, what: string) {
  assert.equal(stats.failed, 0, `${what}: ${JSON.stringify(stats.errors)}`);
  const later = stats.replies.filter((reply) => reply.sentAt > returnedAt);
  assert.ok(later.length > 0 && later.every((reply) => reply.body === 'v2'), `${what}: every request sent after the upgrade went to v2`);
}

async function assertH2Load(t: TestContext, load: H2Load, returnedAt: number) {
  const stats = await load.stop();
  const { retried, sessions } = load.counts();
  t.diagnostic(`h2: ${stats.ok} streams answered (${JSON.stringify(stats.bodies)}), ${stats.failed} failed, ${retried} refused and sent again, ${sessions} sessions`);
  assertServed(stats, returnedAt, 'HTTP/2 streams');
  assert.ok(sessions > 6, 'the clients opened new sessions after the GOAWAY');
}

for (const secure of [false, true]) {
  test(`node:http2 ${secure ? 'secure (TLS)' : 'plain (h2c)'}: 0 failed streams through an upgrade, slow streams answered by v1`, async (t) => {
    const { master, load } = await h2Master(t, { secure });
    await waitFor('load to flow', () => load.peek().length >= 30);
    const slow = await slowRequests(master, load.get, 'h2-', 6);
    const returnedAt = await upgradeToV2(t, master, [load]);
    assert.deepEqual(await slow.answers, Array(6).fill('v1'));
    await assertH2Load(t, load, returnedAt);
  });
}

test('an allowHTTP1 server drains its HTTP/1.1 clients (Connection: close) and its HTTP/2 clients (GOAWAY)', async (t) => {
  const { master, port, load } = await h2Master(t, { secure: true, allowHttp1: true });
  const h1 = startLoad(port, { keepAlive: 4, close: 2, ca });
  t.after(() => h1.stop());
  await waitFor('load to flow', () => load.peek().length >= 30 && h1.peek().length >= 30);
  // An HTTP/1.1 keep-alive socket with a slow request on it when the drain starts.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  t.after(() => agent.destroy());
  assert.equal((await get(port, '/', agent, 10_000, ca)).headers.connection, 'keep-alive');
  const h1Slow = get(port, '/slow?ms=3000&tag=h1-keepalive', agent, 10_000, ca);
  const h2Slow = await slowRequests(master, load.get, 'h2-', 4);
  const h1Slows = await slowRequests(master, async (path) => (await get(port, path, false, 10_000, ca)).body, 'h1-', 4);
  await waitFor('the keep-alive slow request in a worker', () => master.stdout().includes('slow request h1-keepalive started'));
  const returnedAt = await upgradeToV2(t, master, [load, h1]);
  assert.deepEqual(await h2Slow.answers, Array(4).fill('v1'));
  assert.deepEqual(await h1Slows.answers, Array(4).fill('v1'));
  const keptAlive = await h1Slow;
  assert.equal(keptAlive.body, 'v1');
  assert.equal(keptAlive.headers.connection, 'close', 'the old worker told the HTTP/1.1 client its socket is closing');
  await assertH2Load(t, load, returnedAt);
  const h1Stats = await h1.stop();
  t.diagnostic(`h1: ${h1Stats.ok} requests answered (${JSON.stringify(h1Stats.bodies)}), ${h1Stats.failed} failed`);
  assertServed(h1Stats, returnedAt, 'HTTP/1.1 requests');
});
