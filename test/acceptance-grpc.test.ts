/**
 * Acceptance: a plain @grpc/grpc-js server (test/fixtures/grpc, written as
 * the grpc-js examples write one), upgraded v1 → v2 under 16 channels looping
 * unary calls with 8 calls of 3 s in flight. The drain sends GOAWAY on every
 * session, so the clients open their next calls on the new workers while the
 * slow calls finish on the old ones. The scenario is in helpers/greeter.ts,
 * the steps and checks in helpers/acceptance.ts.
 */
import { test } from 'node:test';
import { checkNoDrop, SLOW_MS, upgradeUnderLoad } from './helpers/acceptance.js';
import { greeterScenario } from './helpers/greeter.js';

const CHANNELS = 16;

test(`@grpc/grpc-js server, ${CHANNELS} channels looping unary calls: upgraded with ${SLOW_MS / 1000} s calls in flight, no call fails`, async (t) => {
  const run = await upgradeUnderLoad(t, greeterScenario(CHANNELS));
  checkNoDrop(t, run, await run.load.stop());
});
