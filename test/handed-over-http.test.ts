/**
 * The old master's own HTTP ports (metrics, health probes) after a successor
 * took them over (control/handed-over-http.ts): a kept-alive prober must not
 * have its connection closed under a request it is sending. Before, the old
 * master closed every connection when it stopped, and a kept-alive prober on
 * the health port read ECONNRESET (CI, Node 20, upgrade-master). A real HTTP
 * server and raw clients on loopback.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { HandedOverHttp } from '../src/control/handed-over-http.js';
import { rawClient } from './helpers/net.js';
import { waitFor, withDeadline } from './helpers/wait.js';

const REQUEST = 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

function responses(text: string): string[] {
  return text.split('HTTP/1.1 ').slice(1);
}

test('handed over: a request on a kept-alive connection is answered with Connection: close; an idle one is closed after the grace; close waits for both', async (t) => {
  // A wait of a minute: only the connections closing can end it within the deadlines below.
  const connections = new HandedOverHttp(60_000);
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', ...connections.request(req, res) }).end('ready\n');
  });
  server.on('connection', (socket: net.Socket) => connections.track(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;

  const prober = rawClient(port);
  const idle = rawClient(port);
  const errors: string[] = [];
  for (const client of [prober, idle]) client.socket.on('error', (error) => errors.push(error.message));
  for (const client of [prober, idle]) {
    client.socket.write(REQUEST);
    await waitFor('a kept-alive answer', () => responses(client.received()).length === 1);
    assert.doesNotMatch(client.received(), /Connection: close/i);
  }

  // The handover, then the old master stops (it waits for its ports), while the prober sends its next probe.
  net.Server.prototype.close.call(server); // Not accepting; open connections stay (http's close would close the idle ones).
  connections.handOver();
  let settled = false;
  const closing = connections.close().then(() => (settled = true));
  prober.socket.write(REQUEST);

  await withDeadline('the prober to be answered and closed', prober.closed, 10_000);
  const probes = responses(prober.received());
  assert.equal(probes.length, 2, prober.received());
  assert.match(probes[1]!, /^200 OK\r\n[^]*Connection: close\r\n[^]*ready\n/i);

  await withDeadline('the idle connection to be closed', idle.closed, 10_000);
  assert.equal(responses(idle.received()).length, 1, 'nothing more was sent on the idle connection');
  await withDeadline('connections.close()', closing, 10_000);
  assert.equal(settled, true);
  assert.deepEqual(errors, [], 'no connection was reset');
});

test('handed over: a connection still open when the wait ends is destroyed', async (t) => {
  const connections = new HandedOverHttp(300);
  let answer: (() => void) | undefined;
  const server = http.createServer((req, res) => {
    connections.request(req, res);
    answer = () => res.end('late\n'); // A request that takes longer than the wait.
  });
  server.on('connection', (socket: net.Socket) => connections.track(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    answer?.();
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  const slow = rawClient(port);
  slow.socket.write(REQUEST);
  await waitFor('the request to arrive', () => answer);
  connections.handOver();
  await withDeadline('connections.close()', connections.close(), 20_000);
  await withDeadline('the slow connection to be destroyed', slow.closed, 5_000);
  assert.equal(slow.received(), '');
});
