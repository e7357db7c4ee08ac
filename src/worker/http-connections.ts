/**
 * What the drain needs to know about a worker's HTTP connections: which
 * responses are in flight, and which keep-alive sockets sit idle.
 *
 * The idle rule (drain rule 3): during a drain, a keep-alive socket is closed
 * once it has had no request in flight and received no byte for
 * DRAIN_IDLE_GRACE_MS — or sooner, by the server's own keepAliveTimeout.
 * Closing an idle socket always races a client that may be about to use it;
 * a client busy enough to matter sends its next request well within the
 * grace and is answered with `Connection: close` instead, so the race is left
 * to clients idle for a whole second — the same race Node's keepAliveTimeout
 * runs every day. Without this rule, an app with a long keepAliveTimeout (65 s
 * is common behind load balancers) would be SIGKILLed at every drain timeout.
 *
 * Sockets that were upgraded (WebSockets) are not HTTP any more and are left
 * to the app (the drain event) and the drain timeout.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';

export const DRAIN_IDLE_GRACE_MS = 1000;
const IDLE_CHECK_INTERVAL_MS = 100;

interface SocketState {
  requests: number;
  /** Responses on this socket, oldest first (more than one when pipelined); finished ones are pruned lazily (pruneFinished). */
  responses: http.ServerResponse[];
  lastActive: number;
  lastBytesRead: number;
}

const sockets = new Map<net.Socket, SocketState>();
/** Responses we switched to `Connection: close` (so we can switch them back). */
const closingByUs = new WeakSet<http.ServerResponse>();
let draining = false;

/**
 * Watches one server's connections and requests (only HTTP servers have
 * either). We wrap this server's `emit` rather than add listeners: it sees a
 * request before the app's handler writes the response, whatever order the
 * app adds its listeners in; it adds no listener Node would count (Node
 * answers `Expect: 100-continue` itself only while nobody listens for
 * `checkContinue`); and an event with one listener stays on EventEmitter's
 * fast path, where a second listener would copy the listener array on every
 * request.
 */
export function watchHttp(server: net.Server): void {
  const connectionEvent = server instanceof https.Server ? 'secureConnection' : server instanceof http.Server ? 'connection' : undefined;
  if (!connectionEvent) return;
  const emit = server.emit;
  server.emit = function (this: net.Server, event: string | symbol, first?: unknown, second?: unknown): boolean {
    if (event === 'request' || event === 'checkContinue' || event === 'checkExpectation') {
      onRequest(first as http.IncomingMessage, second as http.ServerResponse);
    } else if (event === connectionEvent) {
      track(first as net.Socket);
    }
    // `arguments`, not a rest parameter: every argument passes on untouched, with no array built per event.
    return (emit as (...args: unknown[]) => boolean).apply(this, arguments as unknown as unknown[]);
  } as typeof server.emit;
}

function track(socket: net.Socket): SocketState {
  let state = sockets.get(socket);
  if (!state) {
    state = { requests: 0, responses: [], lastActive: Date.now(), lastBytesRead: 0 };
    sockets.set(socket, state);
    socket.once('close', () => sockets.delete(socket));
  }
  return state;
}

/** A response that needs nothing more from us: sent in full, or its socket is gone. */
function isDone(res: http.ServerResponse): boolean {
  return res.writableFinished || res.destroyed;
}

/**
 * Drops finished responses from the front of the socket's queue. HTTP/1.1
 * answers in order, so they finish in order. Doing this lazily, instead of a
 * `close` listener per response, keeps the cost of every request down (a
 * listener per response measured about 8% more worker CPU per request).
 * Returns whether any was dropped.
 */
function pruneFinished(state: SocketState): boolean {
  let pruned = false;
  while (state.responses.length > 0 && isDone(state.responses[0]!)) {
    state.responses.shift();
    pruned = true;
  }
  return pruned;
}

function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const state = track(req.socket);
  if (state.responses.includes(res)) return; // the app re-emitted it (checkContinue → request)
  pruneFinished(state);
  state.requests++;
  state.responses.push(res);
  state.lastActive = Date.now();
  if (draining) closeAfterLast(state);
}

/**
 * `Connection: close` on the last response queued on the socket only: Node
 * closes the socket after a response that says so, so with pipelined
 * requests an earlier one saying it would drop the later ones, whose
 * handlers have already run.
 */
function closeAfterLast(state: SocketState): void {
  const last = state.responses.at(-1);
  for (const res of state.responses) {
    if (res.headersSent) continue;
    if (res === last) {
      if (res.shouldKeepAlive) {
        res.shouldKeepAlive = false;
        closingByUs.add(res);
      }
    } else if (closingByUs.has(res)) {
      res.shouldKeepAlive = true;
      closingByUs.delete(res);
    }
  }
}

/**
 * From now on every response not yet started says `Connection: close`, and
 * idle keep-alive sockets are closed by the rule above. Returns a function
 * that stops the idle checks.
 */
export function drainConnections(): () => void {
  draining = true;
  for (const state of sockets.values()) {
    pruneFinished(state);
    closeAfterLast(state);
  }
  const timer = setInterval(closeIdleSockets, IDLE_CHECK_INTERVAL_MS);
  timer.unref(); // The sockets keep the worker alive, not this check.
  return () => clearInterval(timer);
}

function closeIdleSockets(): void {
  const now = Date.now();
  for (const [socket, state] of sockets) {
    const bytesRead = socket.bytesRead;
    if (bytesRead !== state.lastBytesRead) {
      // Bytes arrived: a request is on its way (or the socket was upgraded).
      state.lastBytesRead = bytesRead;
      state.lastActive = now;
      continue;
    }
    // A response that finished since the last check counts as activity now
    // (at most one check interval later than it happened: on the safe side).
    if (pruneFinished(state)) state.lastActive = now;
    if (state.responses.length > 0 || now - state.lastActive < DRAIN_IDLE_GRACE_MS) continue;
    // A socket that sent bytes but never a request was upgraded (or is mid-way
    // through its first request's headers): not ours to close.
    if (state.requests === 0 && bytesRead > 0) continue;
    if ((socket as { parser?: unknown }).parser === null) continue; // detached from HTTP: upgraded
    // destroy(), not end(): http.Server sockets allow half-open, so end()
    // would leave a request that crosses our FIN executed but unanswered, and
    // a peer that never closes its side would hold the worker to the drain
    // timeout. This is what Node's own keepAliveTimeout does.
    socket.destroy();
  }
}
