/** Expectations about failed calls. */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { status } from '@grpc/grpc-js';
import { LiveswapClientError, type GetStatusResponse } from '../../src/client/index.js';

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
 * A WatchWorkers client that never reads: a raw HTTP/2 client with a zero
 * flow-control window, so the master can send it nothing. `closed` resolves
 * with the RST_STREAM code the stream ends with (-1 for none).
 */
export function stuckWatcher(endpoint: string, token: string): { closed: Promise<number>; destroy(): void } {
  const session = http2.connect(`http://${endpoint}`, { settings: { initialWindowSize: 0 } });
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': '/liveswap.v1.LiveswapService/WatchWorkers',
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: `Bearer ${token}`,
  });
  stream.on('error', () => {});
  stream.end(Buffer.from([0, 0, 0, 0, 0])); // one empty WatchWorkersRequest
  const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
  return { closed, destroy: () => session.destroy() };
}
