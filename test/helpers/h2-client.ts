/**
 * An HTTP/2 client over TLS (node:http2) that follows the protocol the way
 * browsers, curl and Go's net/http do: one session at a time; a session that
 * received GOAWAY takes no new stream, so the next request opens a new
 * session; a request the server refused without processing it (a stream
 * above the GOAWAY's last stream id, or reset with REFUSED_STREAM) is sent
 * again, once, on a fresh session, which RFC 9113 §8.7 says is safe. Such
 * retries are counted, not hidden.
 */
import http2 from 'node:http2';
import { loopClients, type Load } from './load.js';

class Refused extends Error {}

export class H2Client {
  private session: http2.ClientHttp2Session | undefined;
  /** Requests sent again after the server refused them unprocessed. */
  retries = 0;

  constructor(
    private readonly port: number,
    private readonly ca: Buffer,
  ) {}

  /** GET `path`; resolves with the body of any answer, rejects when there is none. */
  async get(path: string, timeoutMs = 10_000): Promise<string> {
    try {
      return await this.send(path, timeoutMs);
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      this.retries++;
      return this.send(path, timeoutMs);
    }
  }

  close(): void {
    this.session?.close();
  }

  /** The open session, or a new one when there is none or it is shutting down (GOAWAY received, closed). */
  private open(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const session = http2.connect(`https://127.0.0.1:${this.port}`, { ca: this.ca });
      // A session's errors also fail its streams, where they are counted.
      session.on('error', () => {});
      this.session = session;
    }
    return this.session;
  }

  private send(path: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const stream = this.open().request({ ':path': path });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => resolve(body));
      stream.setTimeout(timeoutMs, () => stream.destroy(new Error('request timed out')));
      // Settles once: a resolved promise ignores what comes after 'end'.
      const fail = (error: Error) =>
        reject(stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? new Refused('refused stream') : error);
      stream.on('error', fail);
      stream.on('close', () => fail(new Error(`stream closed (code ${stream.rstCode}) before its answer ended`)));
      stream.end();
    });
  }
}

/**
 * `sessions` clients looping GET /, each on its own TLS connection; `retries()`
 * sums the requests they sent again after a refusal.
 */
export function startH2Load(port: number, ca: Buffer, sessions: number): Load & { retries(): number } {
  const clients = Array.from({ length: sessions }, () => new H2Client(port, ca));
  const load = loopClients(
    clients.map((client) => () => client.get('/')),
    { close: () => clients.forEach((client) => client.close()) },
  );
  return { ...load, retries: () => clients.reduce((sum, client) => sum + client.retries, 0) };
}
