import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { runLoops, type Load } from './load.js';

/**
 * A port that was free a moment ago on 127.0.0.1 (and on ::1 where there is
 * IPv6), for a server the test starts next.
 *
 * Taken below the kernel's ephemeral range, not from listen(0): a port from
 * that range can be taken, before our server binds it, as the local port of
 * any outgoing connection, and tests running beside this one open thousands
 * (a worker once failed its bind with EADDRINUSE in CI that way). Below the
 * range only another explicit bind competes, and that is checked for.
 */
export async function freePort(): Promise<number> {
  const [low, high] = belowEphemeralRange();
  if (high - low < 1000) return ephemeralPort(); // a machine that left no room below its range
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if ((await bindable(port, '127.0.0.1')) && (await bindable(port, '::1'))) return port;
  }
  throw new Error(`no free port found in ${low}-${high - 1} after 50 tries`);
}

/** [first, end) of the ports under the ephemeral range, above the privileged ones and the common dev ports. */
function belowEphemeralRange(): [number, number] {
  let ephemeralLow = 32768; // Linux's default
  try {
    ephemeralLow = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    // Not Linux: keep the default.
  }
  return [10_000, ephemeralLow];
}

/** Can a server listen on `port` at `host` now? An address family the machine lacks does not count against it. */
function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EADDRNOTAVAIL' || error.code === 'EAFNOSUPPORT'));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function ephemeralPort(): Promise<number> {
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
