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
  inFlight: number;
  lastActive: number;
  lastBytesRead: number;
}

const sockets = new Map<net.Socket, SocketState>();
const responsesInFlight = new Set<http.ServerResponse>();
let draining = false;

/** Watches one server's connections and requests (only HTTP servers have either). */
export function watchHttp(server: net.Server): void {
  // Prepended so that we mark a response before the app's handler writes it.
  server.prependListener('request', onRequest);
  if (server instanceof https.Server) server.on('secureConnection', onConnection);
  else if (server instanceof http.Server) server.on('connection', onConnection);
}

function onConnection(socket: net.Socket): void {
  sockets.set(socket, { requests: 0, inFlight: 0, lastActive: Date.now(), lastBytesRead: 0 });
  socket.once('close', () => sockets.delete(socket));
}

function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (draining) res.shouldKeepAlive = false;
  responsesInFlight.add(res);
  const state = sockets.get(req.socket);
  if (state) {
    state.requests++;
    state.inFlight++;
    state.lastActive = Date.now();
  }
  res.once('close', () => {
    responsesInFlight.delete(res);
    if (state) {
      state.inFlight--;
      state.lastActive = Date.now();
    }
  });
}

/**
 * From now on every response not yet started says `Connection: close`, and
 * idle keep-alive sockets are closed by the rule above. Returns a function
 * that stops the idle checks.
 */
export function drainConnections(): () => void {
  draining = true;
  for (const res of responsesInFlight) {
    if (!res.headersSent) res.shouldKeepAlive = false;
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
    if (state.inFlight > 0 || now - state.lastActive < DRAIN_IDLE_GRACE_MS || socket.writableEnded) continue;
    // A socket that sent bytes but never a request was upgraded (or is mid-way
    // through its first request's headers): not ours to close.
    if (state.requests === 0 && bytesRead > 0) continue;
    if ((socket as { parser?: unknown }).parser === null) continue; // detached from HTTP: upgraded
    socket.end();
  }
}
