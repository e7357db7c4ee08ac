/**
 * The HTTP side of a drain (rules 2 and 3 in drain.ts): `Connection: close`
 * on the last response of every socket, and idle keep-alive sockets closed
 * only when it is safe.
 *
 * Nothing here runs before the drain starts, on purpose. The first versions
 * tracked every connection and response as it happened (a Map entry and a
 * `close` listener per socket, a queue of responses per socket, a hook on
 * every finished response): callgrind counted 13k instructions more per
 * connection-close request than the bare app, 5.8% of the worker, nearly all
 * of it scavenger work for that bookkeeping; with this module switched off
 * the worker ran level with the bare app. What the drain needs, Node
 * already keeps:
 *   - each HTTP(S) server's list of connections (what closeIdleConnections
 *     uses): its parsers name their sockets, and `active()` lists those
 *     receiving a request (and fresh connections, which have received
 *     nothing: Node times their headers from the moment they connect);
 *   - on each socket, the response being sent (`_httpMessage`, null between
 *     requests) and, on its parser, the last request parsed (`incoming`).
 * Those are internals. The worker checks them once, at its first listen
 * (http-internals.ts), and warns naming any that this Node lacks; the drain
 * then does without the rules that need them, never resetting a socket a
 * client may be using: without `parser.incoming` no response says
 * `Connection: close`, and a busy keep-alive socket closes by the idle rule
 * after its last response; without the connections list, `active()` or
 * `_httpMessage`, the idle rule gives way to the server's keepAliveTimeout,
 * lowered to the grace, for sockets that go idle during the drain, and the
 * timer they already have (or the drain timeout) for sockets idle before it.
 * A test runs the probe on every Node line CI runs, so a Node that changes
 * them fails CI rather than degrading a drain unnoticed.
 *
 * The idle rule (drain rule 3): once the drain has started, a keep-alive
 * socket is closed when it has had no response in flight, no request being
 * received and no byte arriving for DRAIN_IDLE_GRACE_MS — or sooner, by the
 * server's own keepAliveTimeout. Closing an idle socket always races a
 * client that may be about to use it; a client busy enough to matter sends
 * its next request well within the grace and is answered with
 * `Connection: close` instead, so the race is left to clients idle for a
 * whole second — the same race Node's keepAliveTimeout runs every day. The
 * grace counts from the drain's start for a socket already idle then: that
 * costs up to a second of drain time when idle keep-alive clients are
 * connected, and gives a client that picks its pooled socket back up at that
 * moment the same second as any other. Without this rule, an app with a long
 * keepAliveTimeout (65 s is common behind load balancers) would be SIGKILLed
 * at every drain timeout.
 *
 * Sockets that were upgraded (WebSockets) are not HTTP any more: Node takes
 * them off the connections list, and they are left to the app (the drain
 * event) and the drain timeout.
 */
import http from 'node:http';
import type net from 'node:net';
import { connectionsOf, httpInternals, type ConnectionsList, type HttpSocket } from './http-internals.js';

export const DRAIN_IDLE_GRACE_MS = 1000;
const DRAIN_CHECK_INTERVAL_MS = 100;

/**
 * Runs a drain rule's check every 100 ms until the returned function stops
 * it. The connections keep the worker alive, not the check (unref), so a
 * worker whose last connection ends exits without waiting for it.
 */
export function everyDrainCheck(check: () => void): () => void {
  const timer = setInterval(check, DRAIN_CHECK_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** http.Server, https.Server and http2's secure server (whose allowHTTP1 connections are HTTP/1.1). */
export function speaksHttp1(server: net.Server): boolean {
  return typeof (server as Partial<http.Server>).closeIdleConnections === 'function';
}

/**
 * A response is the last one queued on its socket when its request is the
 * last one the socket's parser has read. Earlier pipelined responses must
 * keep the socket open: Node closes it after a response that says
 * `Connection: close`, which would drop the later ones, whose handlers have
 * already run.
 */
function isLastOnItsSocket(res: http.ServerResponse): boolean {
  const req = (res as { req?: http.IncomingMessage }).req;
  const parser = (req?.socket as HttpSocket | undefined)?.parser;
  // No parser: the socket was upgraded or is gone; nothing to say.
  return parser != null && parser.incoming === req;
}

let closeHookInstalled = false;

/**
 * From now on, a response decides at the moment its headers are written
 * (every response goes through writeHead, explicitly or from end() and
 * write()) whether it says `Connection: close`: the last on its socket does.
 * Deciding then, rather than when the drain starts or the request arrives,
 * sees every pipelined request read up to that moment, so nothing needs
 * switching back; a response whose headers went out before the drain keeps
 * them, and its socket is left to the idle rule.
 */
function closeAfterLastResponses(): void {
  if (closeHookInstalled) return;
  closeHookInstalled = true;
  const proto = http.ServerResponse.prototype;
  const writeHead = proto.writeHead as (this: http.ServerResponse, ...args: unknown[]) => http.ServerResponse;
  proto.writeHead = function (this: http.ServerResponse) {
    if (this.shouldKeepAlive && !this.headersSent && isLastOnItsSocket(this)) this.shouldKeepAlive = false;
    // `arguments`: writeHead has three call shapes, all passed on untouched.
    return writeHead.apply(this, arguments as unknown as unknown[]);
  } as typeof proto.writeHead;
}

interface Activity {
  bytesRead: number;
  /** When the socket was last seen busy (or the drain started). */
  since: number;
}

/**
 * Starts rules 2 and 3 for these servers. Returns a function that stops
 * the idle checks.
 */
export function drainConnections(servers: Iterable<net.Server>): () => void {
  const internals = httpInternals();
  if (internals.lastResponseCloses) closeAfterLastResponses();
  const httpServers = [...servers].filter(speaksHttp1);
  if (!internals.idleRule) {
    for (const server of httpServers) closeKeepAliveSocketsSooner(server as http.Server);
    return () => {};
  }
  const lists = httpServers.map(connectionsOf).filter((list): list is ConnectionsList => list !== undefined);
  if (lists.length === 0) return () => {};
  const seen = new WeakMap<net.Socket, Activity>();
  return everyDrainCheck(() => closeIdleSockets(lists, seen));
}

/**
 * The fallback for rule 3 on a Node without the internals it reads: Node's
 * own keepAliveTimeout, lowered to the grace, closes a socket that goes idle
 * during the drain (the same race that timeout runs every day); a socket
 * already idle keeps the timer it has (5 s by default) or is left to the
 * drain timeout.
 */
function closeKeepAliveSocketsSooner(server: http.Server): void {
  if (!(server.keepAliveTimeout > 0 && server.keepAliveTimeout <= DRAIN_IDLE_GRACE_MS)) server.keepAliveTimeout = DRAIN_IDLE_GRACE_MS;
}

function closeIdleSockets(lists: ConnectionsList[], seen: WeakMap<net.Socket, Activity>): void {
  const now = Date.now();
  for (const list of lists) {
    const active = new Set(list.active());
    for (const parser of list.all()) {
      const socket = parser.socket;
      if (!socket || socket.parser !== parser || socket.destroyed) continue;
      const bytesRead = socket.bytesRead;
      let activity = seen.get(socket);
      if (!activity) {
        activity = { bytesRead, since: now };
        seen.set(socket, activity);
      }
      // Busy: a response in flight, bytes arrived, or a request being
      // received (a connection that has received nothing yet is idle).
      const receiving = active.has(parser) && bytesRead > 0;
      if (bytesRead !== activity.bytesRead || socket._httpMessage || receiving) {
        activity.bytesRead = bytesRead;
        activity.since = now;
        continue;
      }
      if (now - activity.since < DRAIN_IDLE_GRACE_MS) continue;
      // destroy(), not end(): http.Server sockets allow half-open, so end()
      // would leave a request that crosses our FIN executed but unanswered, and
      // a peer that never closes its side would hold the worker to the drain
      // timeout. This is what Node's own keepAliveTimeout does.
      socket.destroy();
    }
  }
}
