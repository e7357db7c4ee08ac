/**
 * Acceptance: a node:http2 secure server (TLS), as Node's docs write one,
 * upgraded v1 → v2 under 16 HTTP/2 clients (one TLS session each, looping
 * GETs) with 8 requests of 3 s in flight. The clients follow GOAWAY: a new
 * session for the next request, and a request the server refused unprocessed
 * sent again (counted in the diagnostics). The scenario and its checks are in
 * helpers/acceptance.ts.
 */
import fs from 'node:fs';
import { test } from 'node:test';
import { answersSentAfter, checkNoDrop, SLOW_MS, upgradeUnderLoad } from './helpers/acceptance.js';
import { makeCerts } from './helpers/certs.js';
import { H2Client, startH2Load } from './helpers/h2-client.js';
import { fixture } from './helpers/paths.js';

const SESSIONS = 16;

test(`node:http2 secure server, ${SESSIONS} HTTP/2 clients: upgraded with ${SLOW_MS / 1000} s requests in flight, none fails`, async (t) => {
  const certs = makeCerts();
  const ca = fs.readFileSync(certs.ca);
  const run = await upgradeUnderLoad(t, {
    v1: fixture('apps/h2/v1.js'),
    v2: fixture('apps/h2/v2.js'),
    env: { TLS_CERT: certs.serverCert, TLS_KEY: certs.serverKey },
    load: (port) => startH2Load(port, ca, SESSIONS),
    flowing: (load) => load.peek().length > 0,
    async slow(port, tag) {
      const client = new H2Client(port, ca);
      try {
        return await client.get(`/slow?ms=${SLOW_MS}&tag=${tag}`);
      } finally {
        client.close();
      }
    },
    settle: answersSentAfter,
  });
  checkNoDrop(t, run, await run.load.stop(), `; ${run.load.retries()} request(s) sent again after a refusal`);
});
