/**
 * Acceptance: a node:http2 secure server (test/fixtures/h2 with a certificate:
 * createSecureServer, as Node's docs write one), upgraded v1 → v2 under 16
 * HTTP/2 clients (one TLS session each, looping GETs) with 8 requests of 3 s
 * in flight. The clients follow GOAWAY as a pooling HTTP/2 client does (a new
 * session for the next request; a stream the server refused unprocessed is
 * sent again, counted in the diagnostics). The steps and checks are in
 * helpers/acceptance.ts.
 */
import fs from 'node:fs';
import { test } from 'node:test';
import { answersSentAfter, checkNoDrop, SLOW_MS, upgradeUnderLoad } from './helpers/acceptance.js';
import { makeCerts } from './helpers/certs.js';
import { h2Client, startH2Load } from './helpers/h2.js';
import { fixture } from './helpers/paths.js';

const SESSIONS = 16;

test(`node:http2 secure server, ${SESSIONS} HTTP/2 clients: upgraded with ${SLOW_MS / 1000} s requests in flight, none fails`, async (t) => {
  const certs = makeCerts();
  const options = { ca: fs.readFileSync(certs.ca) };
  const authority = (port: number) => `https://127.0.0.1:${port}`;
  const run = await upgradeUnderLoad(t, {
    v1: fixture('h2/v1.js'),
    v2: fixture('h2/v2.js'),
    env: { TLS_CERT: certs.serverCert, TLS_KEY: certs.serverKey },
    load: (port) => startH2Load(authority(port), { clients: SESSIONS, concurrency: 1, options }),
    flowing: (load) => load.peek().length > 0,
    async slow(port, tag) {
      const client = h2Client(authority(port), options);
      try {
        return await client.get(`/slow?ms=${SLOW_MS}&tag=${tag}`);
      } finally {
        client.close();
      }
    },
    settle: answersSentAfter,
  });
  const stats = await run.load.stop();
  const { retried, sessions } = run.load.counts();
  checkNoDrop(t, run, stats, `; ${retried} refused stream(s) sent again, ${sessions} sessions opened`);
});
