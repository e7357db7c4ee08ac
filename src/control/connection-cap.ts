/**
 * A cap on the connections one of the master's own ports (control, health,
 * metrics) holds at once. Every connection costs the master a file
 * descriptor and some memory, whoever opened it, token or not. Uncapped, a
 * peer that opens connections and sends nothing takes them all: with the
 * master's descriptors gone, node:cluster's round-robin accept in the master
 * fails too, and the app's own clients are reset (test/security-connections:
 * 600 idle connections to a master limited to 512 descriptors, then 50 of 50
 * app requests reset). Past the cap the kernel's connection is accepted and
 * closed at once, and the refusals are logged aggregated.
 *
 * The price: a peer that holds the cap's worth of connections locks other
 * clients out of that port until it leaves or its connections idle out (see
 * limits.ts). That is the better failure: the app keeps serving. Ports that
 * strangers can reach want a unix socket or mTLS (docs/security.md).
 */
import type net from 'node:net';
import type { RefusalLog } from './refusal-log.js';

interface DropData {
  remoteAddress?: string;
  remotePort?: number;
}

/** Caps `server` at `max` connections at once; each connection refused beyond it is recorded in `refusals`. */
export function capConnections(server: net.Server, max: number, what: string, refusals: RefusalLog): void {
  server.maxConnections = max;
  // 'drop' (Node >= 18.6): a connection closed because the server was full; no data on a unix socket.
  server.on('drop', (data?: DropData) => {
    const peer = data?.remoteAddress ? `${data.remoteAddress}:${data.remotePort ?? 0}` : 'a unix socket peer';
    refusals.record(peer, 'a connection', `the ${what} already holds ${max} connections`);
  });
}
