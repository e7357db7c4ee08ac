/**
 * A lean HTTP/1.1 client for the steady-state rounds: one pre-encoded GET per
 * request on a plain TCP socket, and just enough parsing to find where each
 * response ends (Content-Length, chunked, or the end of the stream) and what
 * its body says. No retries, no pooling beyond the one socket a keep-alive
 * client keeps.
 *
 * Why not Node's http client there: on the 2-core VM it spent 80–120 µs of
 * CPU per request and was the bottleneck at a full core, so the rounds
 * measured the load generator rather than the servers, and the same setup
 * varied by 40% from round to round. This client costs about 20 µs a request:
 * the servers set the pace. The upgrade runs keep Node's http client, whose
 * behaviour on a reset socket (ECONNRESET, "socket hang up", no retry) is
 * what a real Node client sees.
 */
import net from 'node:net';
import type { Outcome } from './load-protocol.js';

const HEADER_END = '\r\n\r\n';

function encodeGet(path: string, keepAlive: boolean): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${keepAlive ? '' : 'Connection: close\r\n'}\r\n`, 'latin1');
}

interface Parsed {
  /** Where the response ends in the text read so far. */
  end: number;
  outcome: Outcome;
  /** The server said `Connection: close`. */
  closes: boolean;
}

/** The first response in `text`; undefined until all of it is there. */
function parseResponse(text: string, atEof: boolean): Parsed | undefined {
  const headerEnd = text.indexOf(HEADER_END);
  if (headerEnd < 0) return undefined;
  const status = Number(text.slice(9, 12));
  const head = text.slice(0, headerEnd).toLowerCase();
  const bodyStart = headerEnd + HEADER_END.length;
  const closes = /\r\nconnection: *close/.test(head);
  const finish = (end: number, body: string): Parsed => ({ end, closes, outcome: status === 200 ? `body:${body}` : `http:${status}` });

  const length = /\r\ncontent-length: *(\d+)/.exec(head);
  if (length) {
    const end = bodyStart + Number(length[1]);
    return text.length >= end ? finish(end, text.slice(bodyStart, end)) : undefined;
  }
  if (/\r\ntransfer-encoding: *chunked/.test(head)) {
    let at = bodyStart;
    let body = '';
    for (;;) {
      const lineEnd = text.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(text.slice(at, lineEnd), 16);
      if (size === 0) {
        // No trailers from the fixture apps: the last chunk is "0\r\n\r\n".
        const end = lineEnd + 4;
        return text.length >= end ? finish(end, body) : undefined;
      }
      if (text.length < lineEnd + 2 + size + 2) return undefined;
      body += text.slice(lineEnd + 2, lineEnd + 2 + size);
      at = lineEnd + 2 + size + 2;
    }
  }
  // Neither: the body runs to the end of the stream.
  return atEof ? finish(text.length, text.slice(bodyStart)) : undefined;
}

/**
 * One client's connection. `get()` sends the request and resolves with its
 * outcome: `body:<text>`, `http:<status>` or `error:<code>`. A keep-alive
 * connection is reused until the server closes it, then reopened. `close()`
 * is for when no request is pending (the generator stops its loops first).
 */
export class RawHttpClient {
  private socket: net.Socket | undefined;
  /** Sockets whose last response said `Connection: close`, waiting for the server's FIN. */
  private readonly closing = new Set<net.Socket>();
  private received = '';
  private pending: ((outcome: Outcome) => void) | undefined;
  private readonly request: Buffer;

  constructor(
    private readonly port: number,
    path: string,
    private readonly keepAlive: boolean,
    /** A request that sees no byte for this long fails with `error:TIMEOUT`. */
    private readonly timeoutMs: number,
  ) {
    this.request = encodeGet(path, keepAlive);
  }

  get(): Promise<Outcome> {
    return new Promise((resolve) => {
      this.pending = resolve;
      const socket = this.socket ?? this.open();
      socket.write(this.request);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
    for (const socket of this.closing) socket.destroy();
  }

  private open(): net.Socket {
    const socket = net.connect({ port: this.port, host: '127.0.0.1', noDelay: true });
    socket.setEncoding('latin1');
    this.socket = socket;
    this.received = '';
    socket.on('data', (chunk: string) => {
      if (socket !== this.socket) return;
      this.received += chunk;
      this.settle(false);
    });
    socket.on('end', () => {
      if (socket === this.socket) this.settle(true);
      else socket.destroy();
    });
    socket.setTimeout(this.timeoutMs, () => {
      if (socket !== this.socket) socket.destroy();
      else if (this.pending) this.fail(socket, 'error:TIMEOUT');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(socket, `error:${error.code ?? error.message}`));
    socket.on('close', () => {
      this.closing.delete(socket);
      this.fail(socket, 'error:socket closed before the response');
    });
    return socket;
  }

  private settle(atEof: boolean): void {
    const parsed = parseResponse(this.received, atEof);
    if (!parsed) return;
    this.received = this.received.slice(parsed.end);
    if (!this.keepAlive || parsed.closes || atEof) this.retire(atEof);
    this.resolve(parsed.outcome);
  }

  /**
   * The next request goes on a new socket. This one is left for the server
   * to close, as it said it would: the side that closes first keeps the
   * connection in TIME_WAIT for 60 s, and at thousands of connections a
   * second a client that closes first fills its own ephemeral port range,
   * making every connect() search it (Node's http client lets the server
   * close first too).
   */
  private retire(atEof: boolean): void {
    const socket = this.socket!;
    this.socket = undefined;
    if (atEof) socket.destroy();
    else this.closing.add(socket);
  }

  private fail(socket: net.Socket, outcome: Outcome): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    socket.destroy();
    this.resolve(outcome);
  }

  private resolve(outcome: Outcome): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.(outcome);
  }
}
