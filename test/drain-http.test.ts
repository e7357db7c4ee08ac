/**
 * HTTP corners of the drain: pipelined requests, `Expect: 100-continue`
 * handled by the app, and HTTPS.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { test } from 'node:test';
import { makeCerts } from './helpers/certs.js';
import { freePort, get, rawClient } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor, withDeadline } from './helpers/wait.js';

/** Raw HTTP/1.1 over one socket: write everything, collect everything until the server closes. */
function rawExchange(port: number, requests: string) {
  const exchange = rawClient(port);
  exchange.socket.write(requests);
  return exchange;
}

test('pipelined requests in flight when the drain starts are all answered', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  // Three slow pipelined requests on one socket: all three are in their handlers, none answered yet,
  // when the drain starts (with one worker, the old one drains after the new one's stability window).
  // Only the last may say `Connection: close`: Node closes the socket after a response that does.
  const exchange = rawExchange(
    port,
    'GET /slow?ms=2500&tag=p1 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /slow?ms=2600&tag=p2 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /slow?ms=2700&tag=p3 HTTP/1.1\r\nHost: x\r\n\r\n',
  );
  t.after(() => exchange.socket.destroy());
  await waitFor('all three requests in their handlers', () => ['p1', 'p2', 'p3'].every((tag) => master.stdout().includes(`slow request ${tag} started`)));
  const upgrade = master.client.upgrade({ target: fixture('v2.js') });
  await exchange.closed;
  const statuses = exchange.received().match(/HTTP\/1\.1 200 OK/g) ?? [];
  assert.equal(statuses.length, 3, `every pipelined request was answered:\n${exchange.received()}`);
  const connectionHeaders = [...exchange.received().matchAll(/^Connection: (\S+)/gim)].map((m) => m[1]!.toLowerCase());
  assert.deepEqual(connectionHeaders, ['keep-alive', 'keep-alive', 'close'], 'only the last one closes the socket');
  await upgrade;
});

test('a request the app answers through checkContinue is not dropped by the drain', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('expect-continue.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  assert.equal((await get(port)).body, 'plain', "Node's own 100-continue handling is intact for others");

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  await get(port, '/', agent); // a keep-alive socket that has served a request before
  let continued!: () => void;
  const gotContinue = new Promise<void>((resolve) => (continued = resolve));
  const answer = new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { Expect: '100-continue' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('continue', () => {
      req.end('payload');
      continued();
    });
    req.on('error', reject);
  });
  // The app has sent 100 Continue and holds the request; its answer takes 3 s, well past the 1 s idle grace.
  await withDeadline('the 100 Continue', gotContinue, 10_000);
  const upgrade = master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(await answer, 'continued');
  await upgrade;
});

test('an HTTPS keep-alive socket on a draining worker gets Connection: close, never a reset', async (t) => {
  const certs = makeCerts();
  const port = await freePort();
  const master = await startMaster(fixture('https-v1.js'), {
    forks: 1,
    env: { APP_PORT: String(port), TLS_CERT: certs.serverCert, TLS_KEY: certs.serverKey },
  });
  t.after(() => master.stop());
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: fs.readFileSync(certs.ca) });
  t.after(() => agent.destroy());
  const request = (path: string) =>
    new Promise<{ body: string; connection: string | undefined; localPort: number | undefined }>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path, agent }, (res) => {
          const localPort = res.socket.localPort;
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ body, connection: res.headers.connection, localPort }));
        })
        .on('error', reject);
    });

  const first = await request('/');
  assert.equal(first.connection, 'keep-alive');
  // In flight on that same TLS socket when the drain begins (3 s: see the HTTP twin in drain.test.ts).
  const inFlight = request('/slow?ms=3000');
  await waitFor('the slow request to be on the kept-alive socket', () => Object.values(agent.sockets)[0]?.length === 1);
  const upgrading = master.client.upgrade({ target: fixture('https-v2.js') });
  const reply = await inFlight;
  assert.equal(reply.body, 'v1');
  assert.equal(reply.localPort, first.localPort, 'the in-flight request went over the kept-alive socket');
  assert.equal(reply.connection, 'close', 'the old worker told the client the socket is closing');
  const upgrade = await upgrading;
  assert.equal(upgrade.killedAtDrainTimeout, 0, 'the TLS socket was closed by the drain, not by the timeout');
  assert.equal((await request('/')).body, 'v2');
});
