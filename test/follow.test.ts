/**
 * `liveswap -s DEPLOY/current/app.js --follow`: the master follows the
 * release link. Under load, a flip to a good release upgrades with no failed
 * request; a flip to a broken one rolls back, keeps the old code serving,
 * logs why and is not retried; a flip to another good release upgrades
 * again. The origin of each upgrade (follow, RPC, SIGHUP) shows in GetStatus,
 * on the WatchWorkers stream, in the log and in the metrics. A burst of flips
 * is one upgrade; a flip during another operation is handled right after it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Origin, UpgradeOutcome, type Transition } from '../src/client/index.js';
import { freePort, get, startLoad } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster, type MasterProcess } from './helpers/processes.js';
import { releaseDir } from './helpers/releases.js';
import { scrape, value } from './helpers/scrape.js';
import { GiveUp, waitFor } from './helpers/wait.js';

/** The follower's safety-net poll (src/supervisor/follower.ts). */
const FOLLOW_POLL_MS = 1000;

const BROKEN = "throw new Error('broken release: DATABASE_URL is not set')\n";

function metricsUrl(master: MasterProcess): string {
  return /metrics on (http:\/\/\S+\/metrics)/.exec(master.stderr())![1]!;
}

/** Every transition the master streams, as they come. */
function recordTransitions(master: MasterProcess, t: { after(fn: () => void): void }): Transition[] {
  const seen: Transition[] = [];
  const abort = new AbortController();
  t.after(() => abort.abort());
  void (async () => {
    for await (const item of master.client.watch({ signal: abort.signal })) {
      if (item.event?.$case === 'transition') seen.push(item.event.transition);
    }
  })().catch(() => {});
  return seen;
}

const upgradesBegun = (master: MasterProcess) => master.stderr().match(/upgrade to generation \d+ \(.*\) begins/g)?.length ?? 0;

test('under load: a flip upgrades with 0 failed requests, a broken release rolls back and is not retried, a flip to a good one upgrades', async (t) => {
  const releases = releaseDir(['r1', 'r2', 'broken'], { broken: BROKEN });
  const port = await freePort();
  const master = await startMaster(releases.current, { env: { APP_PORT: String(port) }, args: ['--follow', '--metrics-port', '0'] });
  t.after(() => master.stop());
  const transitions = recordTransitions(master, t);
  const before = await master.client.status();
  assert.equal(before.following, releases.current);
  assert.equal(before.target, releases.release('r1'));

  const load = startLoad(port);
  await waitFor('load to flow', () => load.peek().length > 50);

  // 1. Flip to r2: the master upgrades on its own.
  const flippedAt = Date.now();
  releases.flip('r2');
  await waitFor('r2 to serve', () => load.peek().some((r) => r.sentAt > flippedAt && r.body === 'r2'), { timeoutMs: 20_000 });
  const firstR2 = load.peek().find((r) => r.sentAt > flippedAt && r.body === 'r2')!;
  t.diagnostic(`first answer from r2 ${firstR2.answeredAt - flippedAt} ms after the flip`);
  await waitFor('the follow upgrade to finish', async () => (await master.client.status()).lastUpgrade?.generation === 2, { timeoutMs: 20_000 });
  const afterFlip = await master.client.status();
  assert.equal(afterFlip.target, releases.release('r2'));
  assert.equal(afterFlip.requestedTarget, releases.current, 'the link, as followed');
  assert.equal(afterFlip.previousTarget, releases.release('r1'));
  assert.equal(afterFlip.lastUpgrade?.origin, Origin.ORIGIN_FOLLOW);
  assert.equal(afterFlip.lastUpgrade?.outcome, UpgradeOutcome.UPGRADE_OUTCOME_OK);
  assert.match(master.stderr(), /follow: \S+current\/app\.js now resolves to \S+r2\/app\.js \(was \S+r1\/app\.js\); upgrading/);
  const gen2 = transitions.filter((tr) => tr.worker?.generation === 2);
  assert.ok(gen2.length >= 4, 'the new workers were streamed');
  assert.ok(gen2.every((tr) => tr.origin === Origin.ORIGIN_FOLLOW), 'every transition of the upgrade carries its origin');

  // 2. Flip to a broken release: rolled back, r2 keeps serving, the reason is logged.
  const brokenAt = Date.now();
  releases.flip('broken');
  await waitFor('the broken release to roll back', () => /follow: the upgrade to \S+broken\/app\.js failed/.test(master.stderr()), { timeoutMs: 20_000 });
  assert.match(master.stderr(), /failed; \S+r2\/app\.js still serves; not retried until \S+ changes: upgrade rolled back: worker \d+ /);
  assert.match(master.stderr(), /broken release: DATABASE_URL is not set/);
  const rolledBack = await master.client.status();
  assert.equal(rolledBack.target, releases.release('r2'));
  assert.equal(rolledBack.lastUpgrade?.outcome, UpgradeOutcome.UPGRADE_OUTCOME_ROLLED_BACK);
  assert.equal(rolledBack.lastUpgrade?.origin, Origin.ORIGIN_FOLLOW);
  assert.equal(rolledBack.lastUpgrade?.target, releases.release('broken'));
  assert.equal(rolledBack.counts?.ready, 2);

  // Not retried: three of the follower's polls pass (an absence can only be
  // watched for a while), with the link's directory changing meanwhile.
  const attempts = upgradesBegun(master);
  const quietUntil = Date.now() + 3 * FOLLOW_POLL_MS;
  await waitFor('three follower polls without a retry', () => {
    if (upgradesBegun(master) !== attempts) throw new GiveUp('the broken release was tried again');
    return Date.now() > quietUntil;
  }, { timeoutMs: 20_000, intervalMs: 100 });
  assert.ok(load.peek().filter((r) => r.sentAt > brokenAt).every((r) => r.body === 'r2'), 'r2 served throughout');

  // 3. Flip to a good release again: upgraded.
  const backAt = Date.now();
  releases.flip('r1');
  await waitFor('r1 to serve again', () => load.peek().some((r) => r.sentAt > backAt && r.body === 'r1'), { timeoutMs: 20_000 });
  await waitFor('the upgrade to finish', async () => (await master.client.status()).lastUpgrade?.generation === 4, { timeoutMs: 20_000 });
  const stats = await load.stop();

  assert.deepEqual(stats.errors, {}, `failed requests: ${JSON.stringify(stats.errors)}`);
  assert.equal(stats.failed, 0);
  assert.deepEqual(Object.keys(stats.bodies).sort(), ['r1', 'r2']);
  t.diagnostic(`${stats.ok} requests, ${stats.failed} failed`);
  const final = await master.client.status();
  assert.equal(final.target, releases.release('r1'));
  assert.equal(final.previousTarget, releases.release('r2'));

  const metrics = await scrape(metricsUrl(master));
  assert.equal(value(metrics, 'liveswap_upgrades_by_origin_total{origin="follow"}'), 3);
  assert.equal(value(metrics, 'liveswap_upgrades_by_origin_total{origin="rpc"}'), 0);
  assert.equal(value(metrics, 'liveswap_upgrades_total{outcome="ok"}'), 2);
  assert.equal(value(metrics, 'liveswap_upgrades_total{outcome="rolled_back"}'), 1);
});

test('a burst of flips is one upgrade; a flip during an RPC upgrade is handled right after it; an RPC upgrade and SIGHUP keep their origin', async (t) => {
  const slow = `setTimeout(() => require(${JSON.stringify(fixture('lib/serve.js'))})('slow'), 1500)\n`;
  const releases = releaseDir(['r1', 'r2', 'r3', 'slow'], { slow });
  const port = await freePort();
  const master = await startMaster(releases.current, { forks: 1, env: { APP_PORT: String(port) }, args: ['--follow', '--metrics-port', '0'] });
  t.after(() => master.stop());

  // A burst: three flips in a row, then quiet. One upgrade, to where the link ends up.
  for (const to of ['r2', 'r3', 'r2']) releases.flip(to);
  await waitFor('the upgrade to r2', async () => (await master.client.status()).lastUpgrade?.generation === 2, { timeoutMs: 20_000 });
  const burst = await master.client.status();
  assert.equal(burst.target, releases.release('r2'));
  assert.equal(upgradesBegun(master), 1, 'the burst made one upgrade');

  // An RPC upgrade to a slow release; the link moves while it runs.
  const rpc = master.client.upgrade({ target: releases.release('slow') });
  await waitFor('the RPC upgrade to run', async () => (await master.client.status()).operationOrigin === Origin.ORIGIN_RPC);
  releases.flip('r3');
  const result = await rpc;
  assert.equal(result.target, releases.release('slow'));
  assert.equal(result.previousTarget, releases.release('r2'));
  await waitFor('the follower to upgrade after it', async () => (await master.client.status()).target === releases.release('r3'), { timeoutMs: 20_000 });
  await waitFor('that upgrade to finish', async () => (await master.client.status()).lastUpgrade?.generation === 4, { timeoutMs: 20_000 });
  assert.equal((await master.client.status()).lastUpgrade?.origin, Origin.ORIGIN_FOLLOW);
  assert.equal((await get(port)).body, 'r3');

  // SIGHUP reloads the link too, with its own origin; the follower finds nothing left to do.
  releases.flip('r1');
  master.child.kill('SIGHUP');
  await waitFor('r1 to serve', async () => (await master.client.status()).target === releases.release('r1'), { timeoutMs: 20_000 });
  await waitFor('no operation running', async () => (await master.client.status()).operation === '');

  const metrics = await scrape(metricsUrl(master));
  const byOrigin = (origin: string) => value(metrics, `liveswap_upgrades_by_origin_total{origin="${origin}"}`);
  // The SIGHUP and the follower race for the flip to r1: one upgrades, the other finds it done or is refused.
  assert.equal(byOrigin('rpc'), 1);
  assert.equal(byOrigin('follow') + byOrigin('sighup'), 3);
  assert.equal(value(metrics, 'liveswap_upgrades_total{outcome="ok"}'), 4);
});
