/** Expectations about failed calls. */
import assert from 'node:assert/strict';
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
