/**
 * Acceptance: HTTP/1.1 frameworks as their docs write them (Express 5,
 * Fastify 5, Koa 3 as ESM with top-level await), each upgraded v1 → v2 under
 * 16 keep-alive or 16 connection-close clients with 8 slow requests of 3 s in
 * flight. The scenario and its checks are in helpers/acceptance.ts.
 */
import { test } from 'node:test';
import { answersSentAfter, checkNoDrop, SLOW_MS, upgradeUnderLoad } from './helpers/acceptance.js';
import { get, startLoad } from './helpers/net.js';
import { fixture } from './helpers/paths.js';

const CLIENTS = 16;
const APPS = [
  { name: 'Express 5', v1: fixture('apps/express/v1.js'), v2: fixture('apps/express/v2.js') },
  { name: 'Fastify 5', v1: fixture('apps/fastify/v1.js'), v2: fixture('apps/fastify/v2.js') },
  { name: 'Koa 3 (ESM, top-level await)', v1: fixture('apps/koa/v1.mjs'), v2: fixture('apps/koa/v2.mjs') },
];

for (const app of APPS) {
  for (const mode of ['keep-alive', 'connection-close'] as const) {
    test(`${app.name}, ${CLIENTS} ${mode} clients: upgraded under load with ${SLOW_MS / 1000} s requests in flight, none fails`, async (t) => {
      const run = await upgradeUnderLoad(t, {
        v1: app.v1,
        v2: app.v2,
        load: (port) => startLoad(port, mode === 'keep-alive' ? { keepAlive: CLIENTS, close: 0 } : { keepAlive: 0, close: CLIENTS }),
        flowing: (load) => load.peek().length > 0,
        slow: async (port, tag) => (await get(port, `/slow?ms=${SLOW_MS}&tag=${tag}`)).body,
        settle: answersSentAfter,
      });
      checkNoDrop(t, run, await run.load.stop());
    });
  }
}
