/**
 * The two acceptance rows of an HTTP/1.1 framework app (one test file per
 * framework, so that each stays well inside the runner's per-file timeout):
 * upgraded v1 → v2 under 16 keep-alive clients, then under 16
 * connection-close clients, with 8 slow requests of 3 s in flight. The
 * scenario and its checks are in acceptance.ts.
 */
import { test } from 'node:test';
import { answersSentAfter, checkNoDrop, SLOW_MS, upgradeUnderLoad } from './acceptance.js';
import { get, startLoad } from './net.js';

const CLIENTS = 16;

export function httpFrameworkRows(name: string, v1: string, v2: string): void {
  for (const mode of ['keep-alive', 'connection-close'] as const) {
    test(`${name}, ${CLIENTS} ${mode} clients: upgraded under load with ${SLOW_MS / 1000} s requests in flight, none fails`, async (t) => {
      const run = await upgradeUnderLoad(t, {
        v1,
        v2,
        load: (port) => startLoad(port, mode === 'keep-alive' ? { keepAlive: CLIENTS, close: 0 } : { keepAlive: 0, close: CLIENTS }),
        flowing: (load) => load.peek().length > 0,
        slow: async (port, tag) => (await get(port, `/slow?ms=${SLOW_MS}&tag=${tag}`)).body,
        settle: answersSentAfter,
      });
      checkNoDrop(t, run, await run.load.stop());
    });
  }
}
