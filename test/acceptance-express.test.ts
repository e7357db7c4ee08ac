/**
 * Acceptance: an Express 5 app, as expressjs.com writes one, upgraded v1 → v2
 * under keep-alive and then connection-close load with slow requests in
 * flight (helpers/http-framework-rows.ts).
 */
import { httpFrameworkRows } from './helpers/http-framework-rows.js';
import { fixture } from './helpers/paths.js';

httpFrameworkRows('Express 5', fixture('apps/express/v1.js'), fixture('apps/express/v2.js'));
