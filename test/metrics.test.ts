/**
 * The master's Prometheus endpoint (--metrics-port), scraped over real HTTP
 * after real operations: one upgrade that succeeds, one that rolls back (a
 * release that cannot boot), one the pre-upgrade hook vetoes, one broadcast,
 * one old worker killed at the drain timeout, one worker crash respawned.
 * Also: a metrics port in use stops the master at start with one line, and
 * two masters in one process (the API) keep separate registries.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import liveswap, { LiveswapError } from 'liveswap';
import { status } from '@grpc/grpc-js';
import { LiveswapClientError } from '../src/client/index.js';
import { freePort, get } from './helpers/net.js';
import { scrape, value } from './helpers/scrape.js';
import { fixture, FIXTURES } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { expectGone, waitFor } from './helpers/wait.js';

function statusOf(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

test('/metrics counts an upgrade, a rollback, a veto, a broadcast, a drain-timeout kill and a crash respawn', async (t) => {
  const appPort = await freePort();
  const master = await startMaster(fixture('v1.js'), {
    forks: 2,
    env: { APP_PORT: String(appPort) },
    args: ['--metrics-port', '0', '--pre-upgrade', fixture('hook-veto-on-request.js')],
  });
  t.after(() => master.stop());
  const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(master.stderr())?.[1];
  assert.ok(url, `the master logs its metrics URL:\n${master.stderr()}`);

  const before = await scrape(url);
  assert.match(before.contentType, /^text\/plain; version=0\.0\.4/);
  assert.equal(value(before, 'liveswap_workers{state="ready"}'), 2);
  for (const outcome of ['ok', 'rolled_back', 'vetoed', 'aborted', 'failed']) {
    assert.equal(value(before, `liveswap_upgrades_total{outcome="${outcome}"}`), 0, `no ${outcome} upgrade yet`);
  }
  // The master's own process metrics, under the same prefix.
  assert.ok(value(before, 'liveswap_process_cpu_user_seconds_total') > 0);
  assert.equal(await statusOf(url.replace('/metrics', '/other')), 404);

  // A request still running on an old worker when it drains: the worker is killed at the drain timeout.
  // (It reaches an old worker long before the upgrade drains one: that waits for a new worker to boot.)
  const slow = get(appPort, '/slow?ms=10000').then(
    () => assert.fail('the slow request was answered, though its worker was killed'),
    (error: Error) => error,
  );
  const ok = await master.client.upgrade({ target: fixture('v2.js'), drainTimeoutMs: 300 });
  assert.equal(ok.killedAtDrainTimeout, 1);
  await slow;
  const rollback = await master.client.upgrade({ target: fixture('boot-throws.js') }).then(
    () => assert.fail('the upgrade to boot-throws.js succeeded'),
    (error: LiveswapClientError) => error,
  );
  assert.equal(rollback.code, status.FAILED_PRECONDITION);
  assert.match(rollback.message, /^upgrade rolled back/);
  const veto = await master.client.upgrade({ target: fixture('v3.js'), hookData: { veto: 'release frozen' } }).then(
    () => assert.fail('the vetoed upgrade succeeded'),
    (error: LiveswapClientError) => error,
  );
  assert.equal(veto.code, status.FAILED_PRECONDITION);
  assert.match(veto.message, /release frozen/);
  const broadcast = await master.client.broadcast({ hello: 1 });
  assert.equal(broadcast.delivered, 2);
  assert.equal((await get(appPort)).body, 'v2', 'v2 still serves after the rollback and the veto');

  const after = await scrape(url);
  const expected: Record<string, number> = {
    'liveswap_upgrades_total{outcome="ok"}': 1,
    'liveswap_upgrades_total{outcome="rolled_back"}': 1,
    'liveswap_upgrades_total{outcome="vetoed"}': 1,
    'liveswap_upgrades_total{outcome="aborted"}': 0,
    'liveswap_upgrades_total{outcome="failed"}': 0,
    'liveswap_upgrade_duration_seconds_count{outcome="ok"}': 1,
    'liveswap_upgrade_duration_seconds_count{outcome="rolled_back"}': 1,
    'liveswap_upgrade_duration_seconds_count{outcome="vetoed"}': 1,
    // The successful upgrade drained the 2 old workers; the rollback had nothing to drain
    // (its only new worker died while starting).
    'liveswap_drain_duration_seconds_count': 2,
    'liveswap_drain_timeout_kills_total': 1,
    'liveswap_workers{state="ready"}': 2,
    'liveswap_workers{state="starting"}': 0,
    'liveswap_workers{state="draining"}': 0,
    'liveswap_pool_size': 2,
    'liveswap_generation': 2,
    // The worker of boot-throws.js exited on its own; the rollback replaced it, no respawn.
    'liveswap_worker_crashes_total': 1,
    'liveswap_worker_restarts_total': 0,
    'liveswap_broadcasts_total': 1,
    'liveswap_broadcast_deliveries_total': 2,
  };
  const actual = Object.fromEntries(Object.keys(expected).map((key) => [key, value(after, key)]));
  assert.deepEqual(actual, expected);

  // The ok upgrade's duration is the one the reply reported, to the millisecond (it includes the 500 ms stability window).
  const okSeconds = value(after, 'liveswap_upgrade_duration_seconds_sum{outcome="ok"}');
  assert.equal(okSeconds, ok.durationMs / 1000, `histogram ${okSeconds} s vs reply ${ok.durationMs} ms`);
  assert.ok(okSeconds >= 0.5);
  // Histogram buckets are cumulative and end with +Inf = count; the killed worker drained for 300 ms.
  assert.equal(value(after, 'liveswap_drain_duration_seconds_bucket{le="+Inf"}'), 2);
  assert.equal(value(after, 'liveswap_drain_duration_seconds_bucket{le="0.25"}'), 1);
  assert.ok(value(after, 'liveswap_drain_duration_seconds_sum') >= 0.3);

  // A worker killed behind the master's back is a crash, respawned after the backoff: a restart.
  const victim = (await master.client.status()).workers[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await waitFor('the crashed worker to be respawned and ready', async () => {
    const s = await master.client.status();
    return s.restarts === 1 && s.counts?.ready === 2 && !s.workers.some((w) => w.pid === victim.pid);
  });
  const crashed = await scrape(url);
  assert.equal(value(crashed, 'liveswap_worker_restarts_total'), 1);
  assert.equal(value(crashed, 'liveswap_worker_crashes_total'), 2);
  assert.equal(value(crashed, 'liveswap_workers{state="ready"}'), 2);
});

test('--metrics-port on a port in use: exit 1 with one line, before any worker is forked', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const result = await runCli(['-s', 'v1.js', '-p', '0', '--metrics-port', String(port)], { cwd: FIXTURES });
  assert.equal(result.code, 1, result.stderr);
  const last = result.stderr.trimEnd().split('\n').at(-1)!;
  assert.equal(last, `liveswap: cannot serve metrics on 127.0.0.1:${port}: address already in use`);
  assert.doesNotMatch(result.stderr, /worker \d+ \(pid/, 'no worker was forked');
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');

  for (const [args, message] of [
    [['-s', 'v1.js', '--metrics-address', '127.0.0.1'], 'liveswap: --metrics-address needs --metrics-port'],
    [['-s', 'v1.js', '--metrics-port', '70000'], 'liveswap: --metrics-port must be a whole number from 0 to 65535, got 70000'],
    [['--status', '--metrics-port', '9464'], 'liveswap: --metrics-port does not apply to --status (only to --start)'],
  ] as const) {
    const usage = await runCli([...args], { cwd: FIXTURES });
    assert.equal(usage.code, 2, `${args.join(' ')}: ${usage.stderr}`);
    assert.equal(usage.stderr, `${message}\n`);
  }
});

test('API: metricsPort gives each in-process master its own registry', async () => {
  delete process.env.APP_PORT; // each master's workers share a port of its own
  await assert.rejects(liveswap({ target: fixture('v1.js'), control: false, metricsPort: 70000, logLevel: 'silent' }), (error: unknown) => {
    assert.ok(error instanceof LiveswapError);
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.message, 'metricsPort must be a whole number from 0 to 65535, got 70000');
    return true;
  });
  const options = { forks: 1, port: 0, metricsPort: 0, logLevel: 'silent', workerOutput: 'ignore' } as const;
  const a = await liveswap({ target: fixture('v1.js'), ...options });
  const b = await liveswap({ target: fixture('v1.js'), ...options }).catch(async (error) => {
    await a.close();
    throw error;
  });
  const pids = [...a.status().workers, ...b.status().workers].map((w) => w.pid);
  try {
    assert.match(a.metricsUrl!, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.notEqual(a.metricsUrl, b.metricsUrl);
    await a.upgrade(fixture('v2.js'));
    const [sa, sb] = await Promise.all([scrape(a.metricsUrl!), scrape(b.metricsUrl!)]);
    assert.equal(value(sa, 'liveswap_upgrades_total{outcome="ok"}'), 1);
    assert.equal(value(sb, 'liveswap_upgrades_total{outcome="ok"}'), 0);
    assert.equal(value(sa, 'liveswap_generation'), 2);
    assert.equal(value(sb, 'liveswap_generation'), 1);
    assert.equal(value(sa, 'liveswap_drain_duration_seconds_count'), 1);
    pids.push(...a.status().workers.map((w) => w.pid));
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  await expectGone(pids);
  // Closed with the master.
  await waitFor('the metrics port to close', () => statusOf(a.metricsUrl!).then(() => false, () => true), { timeoutMs: 5000 });
});
