import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { runLoops, type Load } from './load.js';

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export interface LoadOptions {
  keepAlive?: number;
  close?: number;
  maxRequests?: number;
  path?: string;
  /** HTTPS, trusting this CA (PEM). */
  ca?: Buffer;
}

/** A GET on 127.0.0.1; over HTTPS when `ca` (PEM) is given. */
export function get(port: number, path = '/', agent?: http.Agent | false, timeoutMs = 10_000, ca?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, agent: agent ?? false, timeout: timeoutMs, ...(ca && { ca }) };
    const req = (ca ? https : http).get(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

/** A raw TCP client on 127.0.0.1: what the server sent so far, as text, and when it closed. Errors only close it. */
export function rawClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  return { socket, received: () => received, closed };
}

/** Is anything accepting connections on the port? */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Light steady load: `keepAlive` clients reusing one socket each and `close`
 * clients opening a new connection per request, each looping until stop()
 * or until `maxRequests` per client. Any HTTP answer counts as served (the
 * seed's v2 answers 404 by design); a failure is a request that got no
 * answer: reset, refused, hung. With `ca`, over HTTPS.
 */
export function startLoad(port: number, { keepAlive = 4, close = 4, maxRequests = 20_000, path = '/', ca }: LoadOptions = {}): Load {
  const agents = Array.from({ length: keepAlive }, () => new (ca ? https : http).Agent({ keepAlive: true, maxSockets: 1 }));
  const body = (agent: http.Agent | false) => async () => (await get(port, path, agent, 5000, ca)).body;
  return runLoops([...agents.map(body), ...Array.from({ length: close }, () => body(false))], {
    maxRequests,
    cleanup: () => agents.forEach((agent) => agent.destroy()),
  });
}
