/**
 * Acceptance: a Koa 3 app, as koajs.com writes one, as an ES module whose
 * releases start it with top-level await, upgraded v1 → v2 under keep-alive
 * and then connection-close load with slow requests in flight
 * (helpers/http-framework-rows.ts).
 */
import { httpFrameworkRows } from './helpers/http-framework-rows.js';
import { fixture } from './helpers/paths.js';

httpFrameworkRows('Koa 3 (ESM, top-level await)', fixture('apps/koa/v1.mjs'), fixture('apps/koa/v2.mjs'));
