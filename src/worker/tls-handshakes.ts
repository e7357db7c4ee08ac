/**
 * TLS connections still in their handshake when the drain starts (drain
 * rule 6), on every TLS server the app listens with (https, http2's secure
 * server).
 *
 * A handshake that completes during the drain needs nothing from here: Node
 * hands the connection to the HTTP/1.1 or HTTP/2 code its ALPN chose, and
 * the drain treats it like any connection that has not sent a request yet
 * (http-connections.ts, http2-sessions.ts). What this module adds is the end
 * of a handshake that stops making progress: no byte received for
 * DRAIN_IDLE_GRACE_MS. Such a client cannot have sent a request, so closing
 * it is the same race as closing a plain connection that never sent one;
 * without this, it would hold the worker until the server's handshakeTimeout
 * (120 s by default) or the drain timeout.
 *
 * The TLS socket of a connection is not reachable from the raw socket the
 * server accepted, so a connection is matched with its TLS socket by the
 * client's address and port, once, when the drain starts. Until then the
 * cost is two Set insertions per TLS connection, pruned as connections close;
 * a TLS handshake costs a thousand times more. Everything read is public API.
 */
import type net from 'node:net';
import { DRAIN_IDLE_GRACE_MS, everyDrainCheck } from './http-connections.js';

/** A Set of sockets that forgets closed ones whenever it has doubled in size. */
class LiveSockets {
  private readonly sockets = new Set<net.Socket>();
  private pruneAt = 64;

  add(socket: net.Socket): void {
    this.sockets.add(socket);
    if (this.sockets.size < this.pruneAt) return;
    for (const known of this.sockets) if (known.destroyed) this.sockets.delete(known);
    this.pruneAt = Math.max(64, 2 * this.sockets.size);
  }

  live(): net.Socket[] {
    return [...this.sockets].filter((socket) => !socket.destroyed);
  }
}

/** Connections TLS servers accepted (raw TCP sockets), and TLS sockets whose handshake completed. */
const accepted = new LiveSockets();
const secured = new LiveSockets();
/** While draining: the client address of every handshake completed during the drain. */
let securedDuringDrain: Set<string> | undefined;

/** node:tls servers (https.Server, http2's secure server): `setSecureContext` is theirs. */
export function isTlsServer(server: net.Server): boolean {
  return typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function';
}

export function trackHandshakes(server: net.Server): void {
  server.on('connection', (socket: net.Socket) => accepted.add(socket));
  server.on('secureConnection', (socket: net.Socket) => {
    if (securedDuringDrain) securedDuringDrain.add(clientOf(socket));
    else secured.add(socket);
  });
}

/** A TLS socket reports the address of the connection it wraps. */
function clientOf(socket: net.Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

interface Progress {
  bytesRead: number;
  since: number;
}

/** Starts ending stalled handshakes. Returns a function that stops the checks. */
export function drainHandshakes(): () => void {
  securedDuringDrain = new Set();
  const done = new Set(secured.live().map(clientOf));
  const now = Date.now();
  const handshakes = new Map<net.Socket, Progress>();
  for (const raw of accepted.live()) {
    if (!done.has(clientOf(raw))) handshakes.set(raw, { bytesRead: raw.bytesRead, since: now });
  }
  if (handshakes.size === 0) return () => {};
  return everyDrainCheck(() => endStalledHandshakes(handshakes));
}

function endStalledHandshakes(handshakes: Map<net.Socket, Progress>): void {
  const now = Date.now();
  for (const [raw, progress] of handshakes) {
    if (raw.destroyed || securedDuringDrain!.has(clientOf(raw))) {
      handshakes.delete(raw); // closed, or now HTTP/1.1 or HTTP/2: their rules apply
      continue;
    }
    // The raw socket counts the TLS bytes the handshake reads through it.
    if (raw.bytesRead !== progress.bytesRead) {
      progress.bytesRead = raw.bytesRead;
      progress.since = now;
    } else if (now - progress.since >= DRAIN_IDLE_GRACE_MS) {
      raw.destroy();
      handshakes.delete(raw);
    }
  }
}
