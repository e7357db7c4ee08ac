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
import { createRequire } from 'node:module';
import type net from 'node:net';

const requireBuiltin = createRequire(import.meta.url);

export const DRAIN_IDLE_GRACE_MS = 1000;
const IDLE_CHECK_INTERVAL_MS = 100;

interface SocketState {
  requests: number;
  /** Responses on this socket not yet finished, oldest first (more than one when pipelined). */
  responses: http.ServerResponse[];
  /** When a request last started or a response last finished on it. */
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
  const connectionEvent = connectionEventOf(server);
  if (!connectionEvent) return;
  forgetFinishedResponses();
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

/**
 * The event that hands an HTTP(S) server a new connection; undefined for any
 * other server. `node:https` is looked at only for a TLS server, whose app has
 * loaded TLS already: importing it up front would load OpenSSL's bindings
 * into every worker, and V8 then scans their objects at every scavenge
 * (callgrind: 1% more instructions per request for a plain HTTP app).
 */
function connectionEventOf(server: net.Server): 'connection' | 'secureConnection' | undefined {
  if (server instanceof http.Server) return 'connection';
  if (typeof (server as { setSecureContext?: unknown }).setSecureContext !== 'function') return undefined;
  const https = requireBuiltin('node:https') as typeof import('node:https');
  return server instanceof https.Server ? 'secureConnection' : undefined;
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

let finishHookInstalled = false;

/**
 * Drops a response from its socket's queue the moment Node is done with it.
 * Node calls ServerResponse#detachSocket once per response, when it has been
 * sent in full (resOnFinish), so wrapping that one method costs a call and a
 * map lookup per response: no listener, no closure. Holding on to finished
 * responses instead (until the socket's next request) kept one dead
 * response graph per keep-alive socket alive through every scavenge:
 * callgrind counted 5× the scavenger's survivor work and 2.4% more
 * instructions per request than the bare app in node:cluster. (A `close`
 * listener per response, the first version, cost about 8% of worker CPU.)
 */
function forgetFinishedResponses(): void {
  if (finishHookInstalled) return;
  finishHookInstalled = true;
  const proto = http.ServerResponse.prototype as http.ServerResponse & { detachSocket(socket: net.Socket): void };
  const detachSocket = proto.detachSocket;
  proto.detachSocket = function (this: http.ServerResponse, socket: net.Socket): void {
    const state = sockets.get(socket);
    if (state) {
      // HTTP/1.1 answers in order: this is the oldest response, index 0.
      const index = state.responses.indexOf(this);
      if (index !== -1) state.responses.splice(index, 1);
      state.lastActive = Date.now();
    }
    detachSocket.call(this, socket);
  };
}

/** Drops responses that ended without Node detaching them (destroyed mid-way); returns whether any was dropped. */
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
