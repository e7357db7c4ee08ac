/**
 * The HTTP/2 side of a drain (rules 4 and 5 in drain.ts), for every
 * `node:http2` server the app listens with, and so for every @grpc/grpc-js
 * server.
 *
 * GOAWAY is HTTP/2's own "open your next stream elsewhere".
 * Http2Session#close() sends it carrying the id of the last stream this
 * worker has begun to process, lets the streams up to that id finish, and
 * then ends the session (Node ends the socket and waits for the client to
 * close its side). A stream the client opened after that id, before it read
 * the GOAWAY, was never processed: the GOAWAY tells the client so, and
 * clients fail such a stream with REFUSED_STREAM, which RFC 9113 (8.7) makes
 * safe to retry. grpc-js retries it at once, transparently; with Node's own
 * client the retry is the caller's. A stream that arrives between the GOAWAY
 * being queued and being written is refused by Node with
 * RST_STREAM(REFUSED_STREAM), so no stream is processed that the GOAWAY
 * says was not. RFC 9113 (6.8) also describes a first GOAWAY with the
 * highest possible id and the real one a round trip later, which would spare
 * clients even that retry; but nghttp2 ignores every new stream once any
 * GOAWAY has gone out (without refusing it), and Node does not expose
 * nghttp2's shutdown notice, so those streams would hang instead.
 *
 * A session that has not received a stream yet gets the idle grace of
 * HTTP/1.1 (DRAIN_IDLE_GRACE_MS): a client that has just connected (a TLS
 * handshake that completed during the drain, a connection the master handed
 * over a moment before the listener closed) sends its first request with
 * its connection preface, before it can read any GOAWAY; that request is
 * served rather than refused. An old session that never sent anything costs
 * the drain that second.
 *
 * What it costs outside a drain: one `session` listener call, a Map entry
 * and two `once` listeners per session; streams are not tracked at all (a
 * session usually carries many). Everything read here is public API:
 * `session`, `connect` and `close` events, `closed`, `destroyed`,
 * `state.lastProcStreamID`.
 */
import type { ServerHttp2Session } from 'node:http2';
import type net from 'node:net';
import { DRAIN_IDLE_GRACE_MS, everyDrainCheck } from './http-connections.js';

interface SessionEntry {
  /** The connection under the session, from its `connect` event. */
  socket?: net.Socket;
  /** When its idle grace started: the drain's start, or its own start if later. */
  graceFrom?: number;
  /** When Node ended the session (all its streams done) with the connection still open. */
  endedAt?: number;
}

/** Every session of every HTTP/2 server the app listens with, until its connection closes. */
const sessions = new Map<ServerHttp2Session, SessionEntry>();
let draining = false;

/** node:http2's two server classes are not exported; `updateSettings` is theirs alone. */
export function isHttp2Server(server: net.Server): boolean {
  return typeof (server as { updateSettings?: unknown }).updateSettings === 'function';
}

export function trackSessions(server: net.Server): void {
  server.on('session', onSession);
}

function onSession(session: ServerHttp2Session): void {
  const entry: SessionEntry = draining ? { graceFrom: Date.now() } : {};
  sessions.set(session, entry);
  session.once('connect', (_session, socket) => (entry.socket = socket as net.Socket));
  session.once('close', () => sessions.delete(session));
}

/**
 * Starts the HTTP/2 rules for every session, present and future. Returns a
 * function that stops the checks.
 */
export function drainSessions(): () => void {
  draining = true;
  const now = Date.now();
  for (const entry of sessions.values()) entry.graceFrom = now;
  checkSessions();
  return everyDrainCheck(checkSessions);
}

function checkSessions(): void {
  const now = Date.now();
  for (const [session, entry] of sessions) {
    if (!session.closed && !session.destroyed && (hasReceivedStreams(session) || now - entry.graceFrom! >= DRAIN_IDLE_GRACE_MS)) {
      session.close();
    }
    if (!session.destroyed) continue;
    // Node ended the session and the socket (FIN); the client closes its
    // side when it reads the GOAWAY. One that has not within the grace is
    // not reading: its connection is destroyed.
    entry.endedAt ??= now;
    if (now - entry.endedAt >= DRAIN_IDLE_GRACE_MS) entry.socket?.destroy();
  }
}

function hasReceivedStreams(session: ServerHttp2Session): boolean {
  // `state` is {} until the session is set up and once it is destroyed.
  return (session.state.lastProcStreamID ?? 0) > 0;
}
