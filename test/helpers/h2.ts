/**
 * HTTP/2 clients for tests, behaving as a pooling HTTP/2 client should: one
 * session kept open per client and reused for every stream, replaced by a
 * new one once the server has sent GOAWAY; a stream the server refused
 * (REFUSED_STREAM: the GOAWAY's last-stream-id says it was never processed)
 * is sent again, as RFC 9113 (8.7) allows. Node's own client does neither
 * by itself: it leaves both to the caller.
 */
import http2 from 'node:http2';
import { runLoops, type Load } from './load.js';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;
const MAX_ATTEMPTS = 5;

export interface H2Client {
  /** A GET answered by the server (its body); rejects if it failed. */
  get(path: string): Promise<string>;
  /** Streams the server refused and this client sent again, sessions opened. */
  readonly counts: { retried: number; sessions: number };
  close(): void;
}

/** A stream that never reached the app: refused by the server, or cancelled before it was sent. */
class NotProcessed extends Error {}

export function h2Client(authority: string, options: http2.SecureClientSessionOptions = {}, timeoutMs = 10_000): H2Client {
  let session: http2.ClientHttp2Session | undefined;
  const counts = { retried: 0, sessions: 0 };
  const current = () => {
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(authority, options);
      // Errors that matter reach the session's streams, which report them.
      session.on('error', () => {});
      counts.sessions++;
    }
    return session;
  };
  const once = (path: string) =>
    new Promise<string>((resolve, reject) => {
      const stream = current().request({ ':path': path });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => (body += chunk));
      stream.on('end', () => resolve(body));
      stream.setTimeout(timeoutMs, () => stream.destroy(new Error('stream timed out')));
      stream.on('error', (error: NodeJS.ErrnoException) => {
        const refused = stream.rstCode === NGHTTP2_REFUSED_STREAM || error.code === 'ERR_HTTP2_STREAM_CANCEL';
        reject(refused ? new NotProcessed(error.message) : error);
      });
      stream.on('close', () => reject(new Error(`stream closed without an answer (code ${stream.rstCode})`)));
    });
  return {
    counts,
    async get(path) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await once(path);
        } catch (error) {
          if (!(error instanceof NotProcessed) || attempt === MAX_ATTEMPTS) throw error;
          counts.retried++;
        }
      }
    },
    close: () => session?.close(),
  };
}

export interface H2Load extends Load {
  /** One more request on one of the load's sessions (in turn). */
  get(path: string): Promise<string>;
  /** Streams retried and sessions opened, over every client. */
  counts(): { retried: number; sessions: number };
}

/** `clients` HTTP/2 clients with `concurrency` streams looping on each. */
export function startH2Load(
  authority: string,
  { clients = 4, concurrency = 2, maxRequests = 20_000, options = {} as http2.SecureClientSessionOptions } = {},
): H2Load {
  const pool = Array.from({ length: clients }, () => h2Client(authority, options));
  const loops = pool.flatMap((client) => Array.from({ length: concurrency }, () => () => client.get('/')));
  const load = runLoops(loops, { maxRequests, cleanup: () => pool.forEach((client) => client.close()) });
  let next = 0;
  return {
    ...load,
    get: (path) => pool[next++ % pool.length]!.get(path),
    counts: () =>
      pool.reduce((sum, { counts }) => ({ retried: sum.retried + counts.retried, sessions: sum.sessions + counts.sessions }), {
        retried: 0,
        sessions: 0,
      }),
  };
}
