/**
 * HTTP corners of the drain: pipelined requests, and `Expect: 100-continue`
 * handled by the app.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

/** Raw HTTP/1.1 over one socket: write everything, collect everything until the server closes. */
function rawExchange(port: number, requests: string) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  socket.write(requests);
  return { socket, received: () => received, closed };
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
    'GET /slow?ms=2500 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /slow?ms=2600 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /slow?ms=2700 HTTP/1.1\r\nHost: x\r\n\r\n',
  );
  t.after(() => exchange.socket.destroy());
  await new Promise((resolve) => setTimeout(resolve, 100)); // let the worker read all three
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
  const answer = new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { Expect: '100-continue' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('continue', () => req.end('payload'));
    req.on('error', reject);
  });
  await waitFor('the request to be in the handler', async () => {
    const s = await master.client.status();
    return s.counts!.ready === 1;
  });
  await new Promise((resolve) => setTimeout(resolve, 200)); // the 100 Continue went out; the answer takes 3 s, well past the 1 s idle grace
  const upgrade = master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(await answer, 'continued');
  await upgrade;
});
