/**
 * gRPC over HTTP/2 (./http2/), for a client of one master: unary calls and server
 * streams, with deadlines, cancellation and the status, message and trailers
 * of every outcome.
 *
 * Why not grpc-js's client: its channel (name resolution, load balancing,
 * retries, channelz: some 50 modules and 560 KB) takes longer to load than
 * Node takes to start, and a `liveswap` command makes one or two calls to one
 * address. Why not node:http2 either: see http2/session.ts. Speaking the
 * protocol directly keeps a client command at the speed of a shell command
 * (bench/cli.ts). The master serves with grpc-js, and grpc-js's own client
 * keeps working against it (test/proto-contract.test.ts,
 * test/helpers/grpc-js-stub.ts), as does any other language's.
 *
 * The wire format: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
 */
import { Status } from '../common/status.js';
import { hostPort } from '../common/address.js';
import type { ControlEndpoint } from '../common/endpoint.js';
import { ErrorCode } from './http2/frames.js';
import { Http2Session, type Headers, type StreamEnd } from './http2/session.js';

export type { Headers } from './http2/session.js';

/** What the generated definition says of a method (ts-proto's generic definitions). */
export interface MethodDefinition<Req, Res> {
  readonly name: string;
  readonly requestType: { encode(message: Req): { finish(): Uint8Array } };
  readonly responseType: { decode(bytes: Uint8Array): Res };
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

export interface TransportTls {
  /** PEM; null: the system's roots. */
  ca: Buffer | null;
  cert: Buffer | null;
  key: Buffer | null;
  /** The name the master's certificate must carry, when it is not the address. */
  serverName?: string;
}

export interface CallOptions {
  headers: Record<string, string>;
  deadlineMs?: number;
  signal?: AbortSignal;
}

/** A call that did not end with OK: the status, its message and the trailers (metadata) that came with it. */
export class CallError extends Error {
  constructor(
    readonly code: Status,
    readonly details: string,
    readonly trailers: Headers = {},
    /** Set when no connection could be made or kept: details is the socket's or TLS's error. */
    readonly connectionFailed = false,
  ) {
    super(details);
    this.name = 'CallError';
  }

  /** A -bin metadata entry's values, decoded (base64, several joined by commas). */
  binary(key: string): Buffer[] {
    const value = this.trailers[key];
    if (value === undefined) return [];
    return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((v) => Buffer.from(v.trim(), 'base64'));
  }
}

/** A reply bigger than this is refused rather than buffered (the master's largest is a status of a few KB). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** A stream's messages held for a reader that has not come for them: beyond this, reading from the master pauses. */
const STREAM_HIGH_WATER = 64;

/** The gRPC spec's mapping of an HTTP status that is not 200 (a proxy, or not a gRPC server). */
function statusOfHttp(httpStatus: number): Status {
  switch (httpStatus) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

/** How a stream reset by the peer ends (the spec's RST_STREAM mapping). */
function statusOfReset(code: number): Status {
  if (code === ErrorCode.REFUSED_STREAM) return Status.UNAVAILABLE;
  if (code === ErrorCode.CANCEL) return Status.CANCELLED;
  if (code === ErrorCode.ENHANCE_YOUR_CALM) return Status.RESOURCE_EXHAUSTED;
  if (code === ErrorCode.INADEQUATE_SECURITY) return Status.PERMISSION_DENIED;
  return Status.INTERNAL;
}

function decodeMessageText(text: string | string[] | undefined): string {
  const raw = Array.isArray(text) ? text.join(',') : (text ?? '');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Splits the length-prefixed messages of a gRPC body out of the chunks it arrives in. */
class MessageReader {
  private buffered: Buffer[] = [];
  private length = 0;

  /** The whole messages now complete; throws a CallError on a message it must refuse. */
  push(chunk: Buffer): Buffer[] {
    this.buffered.push(chunk);
    this.length += chunk.length;
    const messages: Buffer[] = [];
    while (this.length >= 5) {
      const head = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
      if (head[0] !== 0) throw new CallError(Status.INTERNAL, 'the master sent a compressed message, which this client did not ask for');
      const size = head.readUInt32BE(1);
      if (size > MAX_MESSAGE_BYTES) throw new CallError(Status.RESOURCE_EXHAUSTED, `the master sent a message of ${size} bytes (at most ${MAX_MESSAGE_BYTES})`);
      this.buffered = [head];
      if (this.length < 5 + size) break;
      messages.push(head.subarray(5, 5 + size));
      const rest = head.subarray(5 + size);
      this.buffered = rest.length > 0 ? [rest] : [];
      this.length = rest.length;
    }
    return messages;
  }

  get pending(): boolean {
    return this.length > 0;
  }
}

function frame(bytes: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(5 + bytes.length);
  framed[0] = 0;
  framed.writeUInt32BE(bytes.length, 1);
  framed.set(bytes, 5);
  return framed;
}

interface CallHandlers {
  message(bytes: Buffer): void;
  /** Once, with null for OK. */
  end(error: CallError | null): void;
}

/** One HTTP/2 connection to a master, opened on the first call and again after it is lost; ref'd only while calls run. */
export class Transport {
  private session: Http2Session | undefined;
  private active = 0;

  constructor(
    private readonly where: ControlEndpoint,
    private readonly path: string,
    private readonly tls: TransportTls | undefined,
  ) {}

  unary<Req, Res>(method: MethodDefinition<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    return new Promise((resolve, reject) => {
      let reply: Res | undefined;
      let replies = 0;
      this.start(method, request, options, {
        message: (bytes) => {
          replies++;
          reply = method.responseType.decode(bytes);
        },
        end: (error) => {
          if (error) reject(error);
          else if (replies !== 1) reject(new CallError(Status.INTERNAL, `the master sent ${replies} replies to a unary call`));
          else resolve(reply!);
        },
      });
    });
  }

  async *serverStream<Req, Res>(method: MethodDefinition<Req, Res>, request: Req, options: CallOptions): AsyncGenerator<Res, void, undefined> {
    const queue: Res[] = [];
    let ended: { error: CallError | null } | undefined;
    let wake: (() => void) | undefined;
    const call = this.start(method, request, options, {
      message: (bytes) => {
        queue.push(method.responseType.decode(bytes));
        if (queue.length >= STREAM_HIGH_WATER) call.pause();
        wake?.();
      },
      end: (error) => {
        ended = { error };
        wake?.();
      },
    });
    try {
      for (;;) {
        if (queue.length > 0) {
          const item = queue.shift()!;
          if (queue.length < STREAM_HIGH_WATER / 2) call.resume();
          yield item;
        } else if (ended) {
          if (ended.error) throw ended.error;
          return;
        } else {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      }
    } finally {
      // The reader left early (break, return, a throw in its loop): cancel.
      if (!ended) call.cancel();
    }
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  private connect(): Http2Session {
    if (this.session?.usable) return this.session;
    const where = this.where;
    let session: Http2Session;
    if ('socket' in where) {
      session = new Http2Session({ socket: where.socket });
    } else if (this.tls) {
      const { ca, cert, key, serverName } = this.tls;
      session = new Http2Session({
        host: where.address,
        port: where.port,
        tls: {
          ...(ca && { ca }),
          ...(cert && { cert }),
          ...(key && { key }),
          // Without a name given, tls checks the certificate against the address dialled.
          ...(serverName && { servername: serverName }),
        },
      });
    } else {
      session = new Http2Session({ host: where.address, port: where.port });
    }
    // A session that is going away takes no new calls: the next one opens another.
    session.onGone = () => {
      if (this.session === session) this.session = undefined;
    };
    session.unref();
    this.session = session;
    return session;
  }

  private start<Req, Res>(method: MethodDefinition<Req, Res>, request: Req, options: CallOptions, handlers: CallHandlers) {
    let finished = false;
    let stream: { pause(): void; resume(): void; cancel(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error: CallError | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', cancel);
      if (--this.active === 0) this.session?.unref();
      // A stream still open is reset (CANCEL); one that has ended ignores this.
      if (error) stream?.cancel();
      handlers.end(error);
    };
    const cancel = () => finish(new CallError(Status.CANCELLED, 'cancelled by the client'));
    const control = { pause: () => stream?.pause(), resume: () => stream?.resume(), cancel };
    this.active++;
    if (options.signal?.aborted) {
      cancel();
      return control;
    }
    options.signal?.addEventListener('abort', cancel, { once: true });
    if (options.deadlineMs !== undefined) {
      timer = setTimeout(() => finish(new CallError(Status.DEADLINE_EXCEEDED, 'deadline exceeded')), options.deadlineMs);
    }
    const headers: [string, string][] = [
      [':method', 'POST'],
      [':scheme', this.tls ? 'https' : 'http'],
      [':path', `/${this.path}/${method.name}`],
      [':authority', 'socket' in this.where ? 'localhost' : hostPort(this.where.address, this.where.port)],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ...(options.deadlineMs !== undefined ? [['grpc-timeout', `${Math.max(1, Math.ceil(options.deadlineMs))}m`] as [string, string]] : []),
      ...Object.entries(options.headers).map(([name, value]) => [name.toLowerCase(), value] as [string, string]),
    ];
    const body = frame(method.requestType.encode(request).finish());

    /** One try on the current connection; `retry` once more on a new one if the master refused the stream unread. */
    const attempt = (retry: boolean) => {
      const session = this.connect();
      session.ref();
      const reader = new MessageReader();
      let responseHeaders: Headers | undefined;
      let trailers: Headers | undefined;
      const onHeaders = (received: Headers, endStream: boolean) => {
        if (responseHeaders && endStream) {
          trailers = received;
          return;
        }
        responseHeaders = received;
        const httpStatus = Number(received[':status']);
        if (httpStatus !== 200 && received['grpc-status'] === undefined) {
          finish(new CallError(statusOfHttp(httpStatus), `the master answered HTTP ${httpStatus}, not gRPC`, received));
        } else if (!String(received['content-type'] ?? '').startsWith('application/grpc')) {
          finish(new CallError(Status.UNKNOWN, `something else is listening there: it answered ${received['content-type'] ?? 'no content type'}, not gRPC`, received));
        }
      };
      const onData = (chunk: Buffer) => {
        if (finished) return;
        try {
          for (const message of reader.push(chunk)) handlers.message(message);
        } catch (error) {
          finish(error instanceof CallError ? error : new CallError(Status.INTERNAL, `cannot decode the master's reply: ${(error as Error).message}`));
        }
      };
      const onClose = (end: StreamEnd) => {
        if (finished) return;
        // Trailers, or a trailers-only reply (the status in the headers).
        const final = trailers ?? (responseHeaders?.['grpc-status'] !== undefined ? responseHeaders : undefined);
        if (final && end.kind === 'ended') {
          const code = Number(final['grpc-status']) as Status;
          if (code !== Status.OK) finish(new CallError(code, decodeMessageText(final['grpc-message']), final));
          else if (reader.pending) finish(new CallError(Status.INTERNAL, "the master's reply ended in the middle of a message"));
          else finish(null);
        } else if ((end.kind === 'refused' || (end.kind === 'reset' && end.code === ErrorCode.REFUSED_STREAM)) && !responseHeaders && retry) {
          // Refused unread (a master going away sends GOAWAY): safe to send again, on a new connection.
          if (this.session === session) this.session = undefined;
          session.close();
          attempt(false);
        } else if (end.kind === 'refused') {
          finish(new CallError(Status.UNAVAILABLE, 'the master went away before taking the call'));
        } else if (end.kind === 'lost' && end.error) {
          // The connection failed: refused, no socket, TLS, or not HTTP/2 at all (a protocol error).
          finish(new CallError(Status.UNAVAILABLE, end.error.message, {}, true));
        } else if (end.kind === 'lost' && !end.setUp) {
          // Closed before the peer's HTTP/2 SETTINGS: a set-up that failed (plain text to a TLS master, a certificate refused).
          finish(new CallError(Status.UNAVAILABLE, 'the connection closed during set-up', {}, true));
        } else if (end.kind === 'lost') {
          finish(new CallError(Status.UNAVAILABLE, 'connection dropped'));
        } else if (end.kind === 'reset' && end.code !== ErrorCode.NO_ERROR) {
          finish(new CallError(statusOfReset(end.code), `the master reset the call (HTTP/2 error ${end.code})`));
        } else {
          finish(new CallError(Status.UNAVAILABLE, 'the master ended the call without a status'));
        }
      };
      try {
        stream = session.request(headers, body, { headers: onHeaders, data: onData, close: onClose });
      } catch (error) {
        // The session closed between connect() and here.
        finish(new CallError(Status.UNAVAILABLE, (error as Error).message, {}, true));
      }
    };
    attempt(true);
    return control;
  }
}
