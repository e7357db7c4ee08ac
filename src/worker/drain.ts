/**
 * Graceful drain inside a worker.
 *
 * The rules, in order of what a client sees:
 * 1. Stop accepting at once: every server the app listens on is closed with
 *    net.Server#close, which hands the listening socket back to the master
 *    (queued connections go to another worker). We deliberately bypass
 *    http.Server#close: since Node 19 it also destroys every keep-alive socket
 *    the server sees as idle, and such a socket is often one on which the
 *    client is writing its next request right now — that request would fail
 *    with ECONNRESET. (http2's close would not send GOAWAY either.)
 * 2. HTTP/1.1: every response whose headers are not yet written (in flight or
 *    arriving later on an open keep-alive socket) is sent with
 *    `Connection: close` if it is the last one on its socket, so the client
 *    learns the socket is going away and Node closes it once the response is
 *    done.
 * 3. HTTP/1.1: a keep-alive socket that stays idle — no request in flight, no
 *    byte received — for 1 s of the drain is closed (or sooner by the
 *    server's own keepAliveTimeout); see http-connections.ts for why that is
 *    the rule.
 * 4. HTTP/2 (every node:http2 server, so every grpc-js server): each session
 *    that has received a stream gets GOAWAY at once. The streams it has begun
 *    are served to the end; the GOAWAY's last-stream-id tells the client that
 *    any later stream was not processed, and it retries it elsewhere
 *    (REFUSED_STREAM). New streams go to a new connection, so to another
 *    worker. Once its streams are done the session ends; a client that has
 *    not closed the connection 1 s later has it destroyed.
 * 5. HTTP/2: a session that has not received a stream yet gets the 1 s of
 *    rule 3: GOAWAY follows its first streams (they are served) or the end
 *    of that second. See http2-sessions.ts.
 * 6. TLS: a connection still in its handshake finishes it and then follows
 *    the rules of the protocol its ALPN chose, as a connection that has not
 *    sent a request yet; a handshake that receives nothing for 1 s is closed.
 * 7. The app is told (`process.on('liveswap:drain')`) so it can close
 *    WebSockets, long polls and timers.
 * 8. When every server has closed (all its connections ended) the worker
 *    leaves the cluster with cluster's own handshake, then exits. If the app
 *    listens for the drain event it owns the rest of its wind-down: the worker
 *    exits when its event loop is empty. Either way the master kills it at
 *    the drain timeout, ending whatever streams and requests are left.
 *
 * HTTP/1.1 rules read Node internals; the worker checks them at its first
 * HTTP listen and warns once if one is missing (http-internals.ts).
 */
import cluster from 'node:cluster';
import net from 'node:net';
import { DRAIN_EVENT, formatAddress, type AddressMessage, type DrainNotice } from '../common/ipc.js';
import { drainConnections, speaksHttp1 } from './http-connections.js';
import { httpInternals } from './http-internals.js';
import { drainSessions, isHttp2Server, trackSessions } from './http2-sessions.js';
import { drainHandshakes, isTlsServer, trackHandshakes } from './tls-handshakes.js';

const servers = new Set<net.Server>();
let draining = false;
let checkedHttpInternals = false;

/** Record every server the app starts listening, before any app code runs. */
export function trackServers(): void {
  const originalListen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    watchServer(this);
    return (originalListen as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof originalListen;
}

function watchServer(server: net.Server): void {
  if (servers.has(server)) return;
  servers.add(server);
  if (isHttp2Server(server)) trackSessions(server);
  if (isTlsServer(server)) trackHandshakes(server);
  if (speaksHttp1(server) && !checkedHttpInternals) {
    checkedHttpInternals = true;
    warnOfMissingHttpInternals();
  }
  let address: string | undefined;
  server.on('listening', () => {
    address = formatAddress(server.address());
    if (address) tellMaster({ liveswap: 'listening', address });
  });
  server.on('close', () => {
    if (address) tellMaster({ liveswap: 'closed', address });
    address = undefined;
  });
}

/** Once per worker: what this Node lacks of the internals the HTTP/1.1 drain reads, and what it does instead. */
function warnOfMissingHttpInternals(): void {
  const { missing, lastResponseCloses, idleRule } = httpInternals();
  if (missing.length === 0) return;
  const instead = [
    ...(lastResponseCloses ? [] : ['responses do not say Connection: close']),
    ...(idleRule ? [] : ["idle keep-alive sockets are left to the server's keepAliveTimeout (lowered to 1 s for those that go idle during the drain)"]),
  ];
  process.stderr.write(
    `liveswap worker: Node ${process.version} lacks ${missing.join(', ')}, which the HTTP/1.1 drain reads; ` +
      `draining falls back to slower rules: ${instead.join('; ')}\n`,
  );
}

function tellMaster(message: AddressMessage): void {
  // Not connected: the master is gone or we are leaving; nobody needs to know.
  if (process.connected) process.send!(message, undefined, undefined, () => {});
}

function closeServer(server: net.Server): Promise<void> {
  // net.Server#close, not http.Server#close: see rule 1 above. The callback
  // runs once every connection of this server has ended.
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    net.Server.prototype.close.call(server, () => resolve());
  });
}

export async function drain(timeoutMs: number): Promise<void> {
  if (draining) return;
  draining = true;
  // Closed first, so that the master stops routing connections here before
  // any GOAWAY sends HTTP/2 clients to reconnect.
  const closing = Promise.all([...servers].map(closeServer));
  const stopIdleChecks = drainConnections(servers);
  const stopSessionChecks = drainSessions();
  const stopHandshakeChecks = drainHandshakes();
  const notice: DrainNotice = { timeoutMs, deadline: Date.now() + timeoutMs };
  const appTakesPart = process.listenerCount(DRAIN_EVENT) > 0;
  (process.emit as (event: string, notice: DrainNotice) => boolean)(DRAIN_EVENT, notice);
  await closing;
  stopIdleChecks();
  stopSessionChecks();
  stopHandshakeChecks();
  await leaveCluster();
  if (!appTakesPart) process.exit(0);
  // Otherwise the app winds down and the process exits when its loop is empty.
}

/**
 * Leave the cluster through its handshake rather than just exiting. With
 * round-robin scheduling the master may have routed a connection to us just
 * before it learned our server closed; that connection is on its way down the
 * IPC channel. The handshake's acknowledgement comes after it, so by then we
 * have handed it back (the master gives it to another worker). A worker that
 * exits without waiting strands such a connection in the master: the client
 * hangs until its own timeout.
 */
function leaveCluster(): Promise<void> {
  return new Promise((resolve) => {
    if (!cluster.worker || !process.connected) return resolve();
    process.once('disconnect', () => resolve());
    cluster.worker.disconnect();
  });
}
