/**
 * The drain reads Node's own bookkeeping of HTTP connections instead of
 * keeping its own (src/worker/http-connections.ts). These tests pin down, on
 * the Node running them, every internal it relies on, and the two rules built
 * on them, on a real server in this process: a Node that changes them fails
 * here, not in a user's drain. The same rules through real workers and
 * upgrades are in drain.test.ts and drain-http.test.ts.
 *
 * A drain never ends inside a worker, so drainConnections() has no undo: the
 * test that needs a response written before any drain runs first.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { drainConnections } from '../src/worker/http-connections.js';
import { connectionsOf, httpInternals, type HttpSocket } from '../src/worker/http-internals.js';
import { rawClient } from './helpers/net.js';
import { waitFor, withDeadline } from './helpers/wait.js';

async function listening(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** A raw client socket and the server's side of it. */
async function connectPair(server: http.Server, port: number) {
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const { socket: client, received, closed } = rawClient(port);
  const [serverSide] = await accepted;
  return { client, serverSide, received, closed };
}

test('this Node keeps the connection list, parsers and sockets the drain reads', async (t) => {
  // What the worker checks at its first listen, on an in-memory connection...
  assert.deepEqual(httpInternals(), { missing: [], lastResponseCloses: true, idleRule: true });
  // ...holds on a listening server with a real connection too.
  const server = http.createServer((req, res) => res.end('ok'));
  const port = await listening(server);
  t.after(() => server.close());
  const { client, serverSide } = await connectPair(server, port);
  t.after(() => client.destroy());
  const parser = connectionsOf(server)?.all().find((candidate) => candidate.socket === serverSide);
  assert.ok(parser, "the server's connections list has the connection's parser");
  assert.equal((serverSide as HttpSocket).parser, parser);
  assert.ok('incoming' in parser);
});

test('draining: idle keep-alive and never-used sockets are closed after the grace, one halfway through a request is not', async (t) => {
  const server = http.createServer((req, res) => res.end('ok'));
  server.keepAliveTimeout = 60_000; // so only the drain's idle rule can close it
  const port = await listening(server);
  t.after(() => server.close());
  const idle = await connectPair(server, port);
  const halfway = await connectPair(server, port);
  const neverUsed = await connectPair(server, port); // a browser's preconnect, say
  t.after(() => neverUsed.client.destroy());
  t.after(() => idle.client.destroy());
  t.after(() => halfway.client.destroy());
  idle.client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the first response', () => idle.received().includes('\r\n\r\nok'));
  halfway.client.write('GET / HTTP/1.1\r\nHost:'); // the rest never comes
  await waitFor('the server to read the half request', () => halfway.serverSide.bytesRead > 0);

  const startedAt = Date.now();
  const stop = drainConnections([server]);
  t.after(stop);
  await withDeadline('the idle socket to be closed', idle.closed, 5000);
  const idleFor = Date.now() - startedAt;
  assert.ok(idleFor >= 1000, `closed ${idleFor} ms into the drain: a socket idle when the drain starts gets the whole grace`);
  await withDeadline('the never-used socket to be closed', neverUsed.closed, 5000);
  assert.equal(halfway.serverSide.destroyed, false, 'a socket receiving a request is never idle');
  assert.doesNotMatch(idle.received(), /Connection: close/, 'its only response went out before the drain');
});

test('draining: only the last pipelined response says Connection: close, and its socket closes after it', async (t) => {
  const server = http.createServer((req, res) => setTimeout(() => res.end(req.url), 200));
  const port = await listening(server);
  t.after(() => server.close());
  const stop = drainConnections([server]);
  t.after(stop);
  const { client, received, closed } = await connectPair(server, port);
  t.after(() => client.destroy());
  client.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n');
  await withDeadline('the server to close the socket after the last response', closed, 5000);
  const connection = [...received().matchAll(/^Connection: (\S+)/gim)].map((m) => m[1]!.toLowerCase());
  assert.deepEqual(connection, ['keep-alive', 'keep-alive', 'close'], received());
  assert.match(received(), /\/a[\s\S]*\/b[\s\S]*\/c/, 'all three answered, in order');
});
