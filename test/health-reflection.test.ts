/**
 * The standard gRPC services next to Liveswap on the control server:
 * grpc.health.v1.Health, open without a token, follows the pool (SERVING
 * while N workers are ready), and server reflection (which needs a token,
 * the read-only one will do) lets `buf curl` list and call the service with
 * no local proto.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from './helpers/net.js';
import { checkHealth, HealthClient, type HealthResponse } from './helpers/health.js';
import { fixture, ROOT, STATE_DIR, tempDir } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor, withDeadline } from './helpers/wait.js';

const BUF = path.join(ROOT, 'node_modules', '.bin', 'buf');

function bufCurl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // From an empty directory: no proto, no buf.yaml anywhere near.
    execFile(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args], { cwd: tempDir(), timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('health follows the pool (NOT_SERVING with no workers or after a Kill, SERVING once N are ready); reflection answers buf curl', async (t) => {
  const appPort = await freePort();
  const master = await startMaster(undefined, { tcp: true, forks: 2, env: { APP_PORT: String(appPort) }, waitReady: false });
  t.after(() => master.stop());
  await waitFor('the control port', () => master.port > 0 || undefined);
  const health = new HealthClient(`127.0.0.1:${master.port}`, grpc.credentials.createInsecure());
  t.after(() => health.close());
  const check = (service: string) => checkHealth(health, service);

  // An idle master serves nothing yet. No token needed.
  assert.equal(await check(''), 'NOT_SERVING');
  assert.equal(await check('liveswap.v1.LiveswapService'), 'NOT_SERVING');
  await assert.rejects(check('no.such.Service'), (error: grpc.ServiceError) => error.code === grpc.status.NOT_FOUND);

  const seen: string[] = [];
  const watch = health.watch({ service: 'liveswap.v1.LiveswapService' });
  watch.on('data', (response: HealthResponse) => seen.push(response.status));
  watch.on('error', () => {});
  t.after(() => watch.cancel());
  await waitFor('the first health status', () => seen.length > 0);

  await master.client.start({ target: fixture('v1.js') });
  await waitFor('SERVING after Start', () => seen.at(-1) === 'SERVING');
  assert.equal(await check(''), 'SERVING');

  // Kill takes every worker down at once: NOT_SERVING until the new ones are ready.
  await master.client.kill();
  await waitFor('SERVING again after Kill', () => seen.at(-1) === 'SERVING' && seen.length >= 4);
  assert.deepEqual(seen, ['NOT_SERVING', 'SERVING', 'NOT_SERVING', 'SERVING']);

  // Reflection: the methods, with no proto at hand; it needs a token (the read-only one will do).
  const base = `http://127.0.0.1:${master.port}`;
  const readOnly = fs.readFileSync(path.join(STATE_DIR, `127.0.0.1_${master.port}.read-only.token`), 'utf8').trim();
  const unlisted = await bufCurl(['--list-methods', base]);
  assert.notEqual(unlisted.code, 0);
  assert.match(unlisted.stdout + unlisted.stderr, /not authenticated/); // buf's words for UNAUTHENTICATED
  const listed = await bufCurl(['--reflect', '--reflect-header', `authorization: Bearer ${readOnly}`, '--list-methods', base]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(listed.stdout.trim().split('\n'), [
    'liveswap.v1.LiveswapService/Broadcast',
    'liveswap.v1.LiveswapService/Die',
    'liveswap.v1.LiveswapService/GetStatus',
    'liveswap.v1.LiveswapService/Kill',
    'liveswap.v1.LiveswapService/Start',
    'liveswap.v1.LiveswapService/Upgrade',
    'liveswap.v1.LiveswapService/UpgradeMaster',
    'liveswap.v1.LiveswapService/WatchWorkers',
  ]);
  // And a call, schema from reflection (google.protobuf types included), token in a header.
  const token = fs.readFileSync(path.join(STATE_DIR, `127.0.0.1_${master.port}.token`), 'utf8').trim();
  const called = await bufCurl(['-H', `authorization: Bearer ${token}`, '--reflect', '--reflect-header', '*', `${base}/liveswap.v1.LiveswapService/GetStatus`]);
  assert.equal(called.code, 0, called.stderr);
  const status = JSON.parse(called.stdout);
  assert.equal(status.generation, 1);
  assert.deepEqual(status.workers.map((w: { state: string }) => w.state), ['WORKER_STATE_READY', 'WORKER_STATE_READY']);
  const broadcast = await bufCurl(['-H', `authorization: Bearer ${token}`, '--reflect', '--reflect-header', '*', '-d', '{"message": {"via": "buf curl"}}', `${base}/liveswap.v1.LiveswapService/Broadcast`]);
  assert.equal(broadcast.code, 0, broadcast.stderr);
  assert.equal(JSON.parse(broadcast.stdout).delivered, 2);
  const refused = await bufCurl([`${base}/liveswap.v1.LiveswapService/GetStatus`]);
  assert.notEqual(refused.code, 0);
  // Without a token buf curl gets no schema at all: reflection refuses it too.
  assert.match(refused.stdout + refused.stderr, /failed to find service named "liveswap\.v1\.LiveswapService"/);

  // Shutting down: NOT_SERVING before the workers are gone.
  const ended = new Promise<void>((resolve) => watch.once('close', resolve));
  await master.client.die();
  await withDeadline('the health stream to end', ended, 10_000);
  assert.equal(seen.at(-1), 'NOT_SERVING');
});
