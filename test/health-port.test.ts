/**
 * --health-port: the probes Kubernetes and load balancers use, on a port of
 * their own, plaintext and tokenless. grpc.health.v1 and GET /readyz follow
 * a Kill (down until the respawned workers are ready, then up) and stay up
 * through a rollback (the old release never stopped serving); /livez says the
 * master runs. The port serves nothing else: not the control service, not
 * reflection. A non-loopback address needs no TLS there; the flags are checked.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { connect } from '../src/client/index.js';
import { expectGrpcError } from './helpers/grpc.js';
import { checkHealth, HealthClient, type HealthResponse } from './helpers/health.js';
import { freePort } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { runCli, startMaster, type MasterProcess } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

interface Probe {
  status: number;
  body: string;
}

function probe(port: number, path: string, method = 'GET'): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
    });
    req.on('timeout', () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
    req.end();
  });
}

function healthPort(master: MasterProcess): number {
  return Number(/health probes on \S+:(\d+):/.exec(master.stderr())![1]);
}

/** /readyz again and again while `during` runs: every distinct answer, in order. */
async function readyzDuring(port: number, during: Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  let done = false;
  // Its outcome is the caller's to check: here it only ends the loop.
  const finished = during.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; !done && i < 5000; i++) {
    const { status, body } = await probe(port, '/readyz');
    const line = `${status} ${body}`;
    if (seen.at(-1) !== line) seen.push(line);
  }
  await finished;
  return seen;
}

test('grpc.health.v1 and /readyz follow a Kill and a rollback; /livez is up; nothing else is served', async (t) => {
  const appPort = await freePort();
  // Boots in 800 ms: a Kill leaves the pool without a ready worker for that long.
  const master = await startMaster(fixture('slow-boot.js'), {
    env: { APP_PORT: String(appPort), BOOT_MS: '800' },
    args: ['--health-port', '0', '--ready-timeout', '5000'],
  });
  t.after(() => master.stop());
  const port = healthPort(master);
  assert.match(master.stderr(), /health probes on 127\.0\.0\.1:\d+: grpc\.health\.v1\.Health, GET \/livez and \/readyz/);

  assert.deepEqual(await probe(port, '/livez'), { status: 200, body: 'ok: the master is running' });
  assert.deepEqual(await probe(port, '/readyz'), { status: 200, body: 'ready: 2 of 2 worker(s) ready' });
  assert.equal((await probe(port, '/metrics')).status, 404);
  assert.equal((await probe(port, '/readyz', 'POST')).status, 405);
  assert.equal((await probe(port, '/livez', 'HEAD')).status, 200);

  const health = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => health.close());
  assert.equal(await checkHealth(health, ''), 'SERVING');
  assert.equal(await checkHealth(health, 'liveswap.v1.LiveswapService'), 'SERVING');
  // Only health: the control service is not on this port, token or not.
  const stranger = connect({ port, token: 'x' });
  t.after(() => stranger.close());
  await expectGrpcError(stranger.status(), grpc.status.UNIMPLEMENTED, /./);

  const watched: string[] = [];
  const watch = health.watch({ service: '' });
  watch.on('data', (response: HealthResponse) => watched.push(response.status));
  watch.on('error', () => {});
  t.after(() => watch.cancel());
  await waitFor('the watch to start', () => watched.length === 1);

  // A Kill: down, then up once the respawned workers are ready.
  const duringKill = await readyzDuring(port, master.client.kill());
  // (The first probe may go out before the Kill lands.)
  assert.ok(duringKill.includes('503 not ready: 0 of 2 worker(s) ready'), duringKill.join(' | '));
  assert.ok(duringKill.every((line) => /^(200 ready: 2|503 not ready: [01]) of 2 worker\(s\) ready$/.test(line)), duringKill.join(' | '));
  assert.equal(duringKill.at(-1), '200 ready: 2 of 2 worker(s) ready', duringKill.join(' | '));
  await waitFor('the watch to see the Kill', () => watched.length >= 3);
  assert.deepEqual(watched, ['SERVING', 'NOT_SERVING', 'SERVING']);

  // A rollback: the old release serves throughout, so the probes never go down.
  const rollback = master.client.upgrade({ target: fixture('boot-throws.js') });
  const duringRollback = await readyzDuring(port, rollback);
  await expectGrpcError(rollback, grpc.status.FAILED_PRECONDITION, /upgrade rolled back/);
  assert.deepEqual(duringRollback, ['200 ready: 2 of 2 worker(s) ready']);
  assert.equal(await checkHealth(health, ''), 'SERVING');
  assert.deepEqual(watched, ['SERVING', 'NOT_SERVING', 'SERVING'], 'the watch saw no change through the rollback');
});

test('the health port may bind every address without TLS; its flags are checked', async (t) => {
  const appPort = await freePort();
  const master = await startMaster(fixture('v1.js'), {
    forks: 1,
    env: { APP_PORT: String(appPort) },
    args: ['--health-port', '0', '--health-address', '0.0.0.0'],
  });
  t.after(() => master.stop());
  assert.match(master.stderr(), /health probes on 0\.0\.0\.0:\d+/);
  assert.equal((await probe(healthPort(master), '/readyz')).status, 200);

  const noPort = await runCli(['-s', fixture('v1.js'), '--health-address', '0.0.0.0']);
  assert.equal(noPort.code, 2);
  assert.equal(noPort.stderr.trim(), 'liveswap: --health-address needs --health-port');
  const onClient = await runCli(['--status', '--health-port', '1']);
  assert.equal(onClient.code, 2);
  assert.match(onClient.stderr, /--health-port does not apply to --status/);
  const badAddress = await runCli(['-s', fixture('v1.js'), '--socket', '/tmp/x.sock', '--health-port', '0', '--health-address', 'pod-name']);
  assert.equal(badAddress.code, 2);
  assert.match(badAddress.stderr, /--health-address must be an IP address/);
});
