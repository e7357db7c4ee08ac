/** Expectations about failed calls. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import type { status } from '@grpc/grpc-js';
import { connect, LiveswapClientError, type GetStatusResponse } from '../../src/client/index.js';
import { runMaster } from '../../src/run.js';
import { fixture } from './paths.js';
import { waitFor } from './wait.js';

/** Awaits a call that must fail; returns its LiveswapClientError. */
export async function rejection(promise: Promise<unknown>): Promise<LiveswapClientError> {
  const error = await promise.then(
    () => assert.fail('expected the call to fail'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof LiveswapClientError, `expected a LiveswapClientError, got ${String(error)}`);
  return error;
}

/** Awaits a call that must fail with `code` and a message matching `message`. */
export async function expectGrpcError(promise: Promise<unknown>, code: status, message: RegExp): Promise<LiveswapClientError> {
  const error = await rejection(promise);
  assert.equal(error.code, code, `expected code ${code}, got ${error.codeName}: ${error.message}`);
  assert.match(error.message, message);
  return error;
}

/**
 * What a refused or harmless call must not change, as one comparable string:
 * the workers (ids, pids, states, generations), the generation, the target,
 * the pool size, and no operation running.
 */
export function poolState(s: GetStatusResponse): string {
  return JSON.stringify({
    generation: s.generation,
    target: s.target,
    operation: s.operation,
    forks: s.forks,
    workers: s.workers.map((w) => [w.id, w.pid, w.state, w.generation]).sort(),
  });
}

/**
 * A master in this process (the only way to set how far a WatchWorkers
 * client may fall behind: `watchBufferEvents`), 2 workers of v1.js on
 * `appPort`, control on 127.0.0.1 and a free port; a client of it; and a
 * watcher that never reads, registered: a raw HTTP/2 client with a zero
 * flow-control window, so the master can send it nothing. `stuckClosed`
 * resolves with the RST_STREAM code that watcher's stream ends with.
 */
export async function masterWithStuckWatcher(appPort: number, watchBufferEvents: number) {
  // Workers inherit this process's environment.
  const previousPort = process.env.APP_PORT;
  process.env.APP_PORT = String(appPort);
  const running = await runMaster({
    target: fixture('v1.js'),
    forks: 2,
    control: { address: '127.0.0.1', port: 0 },
    watchBufferEvents,
    log: { level: 'error' },
    workerOutput: 'ignore',
  });
  const endpoint = running.control!.target;
  const client = connect({ port: Number(endpoint.split(':')[1]) });
  const session = http2.connect(`http://${endpoint}`, { settings: { initialWindowSize: 0 } });
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': '/liveswap.v1.LiveswapService/WatchWorkers',
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: `Bearer ${fs.readFileSync(running.control!.tokenFile!, 'utf8').trim()}`,
  });
  stream.on('error', () => {});
  stream.end(Buffer.from([0, 0, 0, 0, 0])); // one empty WatchWorkersRequest
  const stuckClosed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
  await waitFor('the stuck watcher to be registered', async () => (await client.status()).watchers === 1);
  return {
    client,
    stuckClosed,
    async stop() {
      session.destroy();
      client.close();
      await running.master.die({ force: true });
      await running.stopped;
      if (previousPort === undefined) delete process.env.APP_PORT;
      else process.env.APP_PORT = previousPort;
    },
  };
}
