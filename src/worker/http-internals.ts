/**
 * The Node internals the HTTP/1.1 drain reads (see http-connections.ts for
 * why it reads them rather than keeping its own bookkeeping), and a probe
 * that says whether this Node has them.
 *
 * The worker runs the probe once, when the app first listens with a server
 * that speaks HTTP/1.1, and logs one warning naming whatever is missing. The
 * drain then leaves out the rules that would need it (see
 * HttpInternalsReport) and falls back to slower ones that never reset a
 * socket a client may be using.
 *
 * The probe drives Node's own code, not a copy of it: a throwaway
 * http.Server is told it is listening (Node sets up its connections list on
 * that event) and handed an in-memory connection, the way Node's docs allow
 * any Duplex to be injected with the `connection` event; its bytes are
 * emitted as `data` events, so the whole exchange runs synchronously, before
 * the app's listen() returns. Nothing touches the network or the app's
 * servers. The HTTP/2 drain reads no internals.
 */
import http from 'node:http';
import type net from 'node:net';
import { Duplex } from 'node:stream';

/** What Node's connections list gives: one HTTP parser per connection. */
export interface HttpParser {
  socket: HttpSocket | null;
  incoming: http.IncomingMessage | null;
}
export interface ConnectionsList {
  all(): HttpParser[];
  /** Parsers that have started reading a request and not finished it, and fresh connections. */
  active(): HttpParser[];
}
export type HttpSocket = net.Socket & { parser?: HttpParser | null; _httpMessage?: http.ServerResponse | null };

const CONNECTIONS_LIST = 'http.server.connections';

/** The server's connections list (set up when it starts listening); undefined for a server that is not HTTP(S). */
export function connectionsOf(server: net.Server): ConnectionsList | undefined {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === CONNECTIONS_LIST);
  const list = key && (server as unknown as Record<symbol, unknown>)[key];
  return list && typeof (list as ConnectionsList).all === 'function' && typeof (list as ConnectionsList).active === 'function'
    ? (list as ConnectionsList)
    : undefined;
}

/** Each internal the drain reads, and how the warning names it. */
const INTERNALS = {
  list: `the ${CONNECTIONS_LIST} list of a server`,
  active: "that list's active()",
  parserLinks: 'socket.parser and parser.socket',
  incoming: 'parser.incoming',
  httpMessage: 'socket._httpMessage',
} as const;
type Internal = keyof typeof INTERNALS;

export interface HttpInternalsReport {
  /** What this Node lacks, as the warning names it; empty when everything holds. */
  missing: string[];
  /** Rule 2 (`Connection: close` on the last response of a socket) needs socket.parser and parser.incoming. */
  lastResponseCloses: boolean;
  /**
   * Rule 3 (idle sockets closed after the grace) needs the connections list
   * with active(), socket.parser and `_httpMessage`. Without them a socket
   * that goes idle during the drain is closed by the server's
   * keepAliveTimeout, lowered to the grace, and one already idle by its own.
   */
  idleRule: boolean;
}

let report: HttpInternalsReport | undefined;

/** The probe's verdict for this Node, computed on first use. */
export function httpInternals(): HttpInternalsReport {
  return (report ??= probe());
}

/**
 * Runs the probe without keeping its verdict: a spare does it ahead of time
 * (warm-up.ts) so that the real probe, at the app's first listen, runs on
 * code that is already compiled. The verdict itself must come from then: the
 * app may change what the probe sees (test/fixtures/hidden-http-internals.js
 * plays a Node without one of them that way).
 */
export function warmHttpInternals(): void {
  probe();
}

function probe(): HttpInternalsReport {
  const found = new Set<Internal>();
  let failure: string | undefined;
  const server = http.createServer();
  const socket = new Duplex({ read() {}, write: (_chunk, _encoding, done) => done() }) as unknown as HttpSocket;
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (socket.parser?.incoming === req) found.add('incoming');
    if (socket._httpMessage === res) found.add('httpMessage');
  });
  try {
    server.emit('listening');
    server.emit('connection', socket);
    socket.emit('data', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n')); // a request halfway in
    const parser = socket.parser;
    if (parser && parser.socket === socket) found.add('parserLinks');
    const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === CONNECTIONS_LIST);
    const list = key && ((server as unknown as Record<symbol, unknown>)[key] as Partial<ConnectionsList>);
    if (parser && list && typeof list.all === 'function' && list.all().includes(parser)) found.add('list');
    if (parser && list && typeof list.active === 'function' && list.active().includes(parser)) found.add('active');
    socket.emit('data', Buffer.from('\r\n')); // the rest: the request handler runs now
  } catch (error) {
    failure = `the probe failed: ${(error as Error).message}`;
  } finally {
    socket.destroy();
    server.close();
  }
  // Without the list, its active() could not be looked for: the list is what is missing.
  const missing = (Object.keys(INTERNALS) as Internal[])
    .filter((name) => !found.has(name) && !(name === 'active' && !found.has('list')))
    .map((name) => INTERNALS[name]);
  return {
    missing: failure ? [...missing, failure] : missing,
    lastResponseCloses: found.has('parserLinks') && found.has('incoming'),
    idleRule: found.has('list') && found.has('active') && found.has('parserLinks') && found.has('httpMessage'),
  };
}
