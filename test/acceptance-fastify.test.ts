/**
 * Acceptance: a Fastify 5 app, as fastify.dev writes one (its 72 s
 * keepAliveTimeout must not hold the drain), upgraded v1 → v2 under
 * keep-alive and then connection-close load with slow requests in flight
 * (helpers/http-framework-rows.ts).
 */
import { httpFrameworkRows } from './helpers/http-framework-rows.js';
import { fixture } from './helpers/paths.js';

httpFrameworkRows('Fastify 5', fixture('apps/fastify/v1.js'), fixture('apps/fastify/v2.js'));
