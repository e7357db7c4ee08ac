/**
 * One HTTP/2 client connection (RFC 9113), the part of it a gRPC client of
 * one master needs: requests with a body, response headers, data and
 * trailers, flow control both ways, SETTINGS, PING, GOAWAY and RST_STREAM.
 * No server push (disabled in our SETTINGS), no priorities, no upgrade from
 * HTTP/1.1: a gRPC connection starts with the preface.
 *
 * Why not node:http2: loading it loads node:tls, node:crypto, node:http and
 * node:assert, 26 ms of CPU on Node 24 (12 on Node 20) before a client
 * command can send anything, more than the rest of the command's own code.
 * On a machine busy serving traffic that is ~50 ms of a deploy's critical
 * path (bench/cli.ts). node:tls is loaded only for a TLS master.
 *
 * The transport (../transport.ts) owns the gRPC meaning; this file only
 * moves frames. Every way a stream ends reaches its handlers once, as a
 * StreamEnd.
 */
import net from 'node:net';
import type { ConnectionOptions as TlsConnectionOptions, TLSSocket } from 'node:tls';
import { encodeFrame, ErrorCode, Flag, FrameReader, FrameType, MAX_FRAME_SIZE, MAX_WINDOW, PREFACE, ProtocolError, Setting, unpadded, type Frame } from './frames.js';
import { encodeHeaders, HpackDecoder, HpackError, type HeaderField } from './hpack.js';

/** Header fields as Node's http2 gives them: repeated names as arrays. */
export type Headers = Record<string, string | string[]>;

/** How a stream ended. */
export type StreamEnd =
  /** The peer ended it (END_STREAM): after trailers, or after data without them. */
  | { kind: 'ended' }
  /** The peer reset it (RST_STREAM) with this error code. */
  | { kind: 'reset'; code: number }
  /** The peer is going away (GOAWAY) and never processed it: safe to send again on a new connection. */
  | { kind: 'refused' }
  /** The connection ended under it: with the socket's or the protocol's error if there was one; setUp once the peer had sent its SETTINGS. */
  | { kind: 'lost'; error: Error | undefined; setUp: boolean };

export interface StreamHandlers {
  /** The response headers, then the trailers (endStream); a trailers-only response is one call with endStream. */
  headers(fields: Headers, endStream: boolean): void;
  data(chunk: Buffer): void;
  /** Once, last. Not called for a stream the caller cancelled. */
  close(end: StreamEnd): void;
}

export interface ClientStream {
  /**
   * Stops granting the peer flow-control credit for this stream: it stops
   * sending once the window is used up. What is already under way (at most
   * the 1 MiB window) is still delivered.
   */
  pause(): void;
  resume(): void;
  /** Resets the stream (CANCEL); its handlers hear nothing more. */
  cancel(): void;
}

export type SessionTarget =
  | { socket: string }
  | { host: string; port: number; tls?: Pick<TlsConnectionOptions, 'ca' | 'cert' | 'key' | 'servername'> };

/** Per stream, the credit this client grants (SETTINGS_INITIAL_WINDOW_SIZE): a paused stream holds at most this much unread. */
const STREAM_WINDOW = 1024 * 1024;
/** For the whole connection (raised with a WINDOW_UPDATE right after the preface). */
const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** A header block (with its CONTINUATIONs) larger than this ends the connection. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** After this client's GOAWAY, how long the peer has to close its side before the socket is destroyed. */
const SOCKET_LINGER_MS = 1000;
/** The window every HTTP/2 peer starts with, before SETTINGS or WINDOW_UPDATE say otherwise. */
const DEFAULT_WINDOW = 65_535;

interface StreamState {
  /** 0 until the stream is opened (it may wait for MAX_CONCURRENT_STREAMS). */
  id: number;
  readonly handlers: StreamHandlers;
  readonly headerBlock: Buffer;
  /** Request body bytes not sent yet. */
  body: Buffer;
  endSent: boolean;
  sendWindow: number;
  receiveWindow: number;
  paused: boolean;
  closed: boolean;
}

/** Node's tls, loaded the first time a TLS master is dialled (see the file comment). */
const loadTls = () => process.getBuiltinModule('node:tls') as typeof import('node:tls');

function toHeaders(fields: readonly HeaderField[]): Headers {
  const headers: Headers = {};
  for (const [name, value] of fields) {
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  return headers;
}

export class Http2Session {
  private readonly socket: net.Socket | TLSSocket;
  private readonly reader = new FrameReader();
  private readonly decoder = new HpackDecoder();
  private readonly streams = new Map<number, StreamState>();
  /** Streams beyond the peer's MAX_CONCURRENT_STREAMS, opened as others close. */
  private readonly waiting: StreamState[] = [];
  private nextStreamId = 1;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrameSize = MAX_FRAME_SIZE;
  private peerMaxStreams = Infinity;
  private sendWindow = DEFAULT_WINDOW;
  private receiveWindow = CONNECTION_WINDOW;
  /** A HEADERS frame whose block continues in CONTINUATION frames. */
  private partialBlock: { streamId: number; endStream: boolean; chunks: Buffer[]; size: number } | undefined;
  private peerSettingsSeen = false;
  private heardFromPeer = false;
  private goingAway = false;
  private closing = false;
  private closed = false;
  private error: Error | undefined;
  /** A GOAWAY that named an error: what the streams it cuts off report. */
  private goawayError: Error | undefined;

  /** Called once, when the session takes no new streams (GOAWAY received, close(), or the connection ended). */
  onGone: () => void = () => {};

  constructor(target: SessionTarget) {
    const plainTcp = !('socket' in target) && !target.tls;
    if ('socket' in target) {
      this.socket = net.connect(target.socket);
    } else if (target.tls) {
      const tls = loadTls();
      // SNI carries a host name, never an address; the certificate is checked against the name given, else the host dialled.
      const servername = target.tls.servername ?? (net.isIP(target.host) ? undefined : target.host);
      const socket = tls.connect({ host: target.host, port: target.port, ALPNProtocols: ['h2'], ...target.tls, ...(servername && { servername }) });
      socket.once('secureConnect', () => {
        if (socket.alpnProtocol !== 'h2') this.fail(new ProtocolError('the master did not agree to HTTP/2 over TLS (ALPN)'));
      });
      this.socket = socket;
    } else {
      this.socket = net.connect({ host: target.host, port: target.port });
    }
    this.socket.setNoDelay?.(true);
    // Written at once: frames may follow the preface before the peer's SETTINGS arrive (RFC 9113, 3.4).
    this.socket.write(
      Buffer.concat([
        PREFACE,
        encodeFrame(FrameType.SETTINGS, 0, 0, settingsPayload([
          [Setting.ENABLE_PUSH, 0],
          [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
        ])),
        windowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW),
      ]),
    );
    this.socket.on('data', (chunk: Buffer) => {
      this.heardFromPeer = true;
      this.receive(chunk);
    });
    this.socket.on('error', (error: NodeJS.ErrnoException) => {
      // A peer that accepted the connection and reset it before sending a
      // byte refused the set-up (a TLS master given plain text does that, or
      // closes: which one is a race); a reset later is the connection's error.
      if (!this.heardFromPeer && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && plainTcp) return;
      this.error ??= error;
    });
    this.socket.on('close', () => this.lost());
  }

  /** The peer has sent its SETTINGS: it speaks HTTP/2. */
  get spokeHttp2(): boolean {
    return this.peerSettingsSeen;
  }

  /** Whether new streams may go on this connection. */
  get usable(): boolean {
    return !this.closed && !this.closing && !this.goingAway;
  }

  ref(): void {
    this.socket.ref();
  }

  unref(): void {
    this.socket.unref();
  }

  /** Sends a request: its header fields (pseudo-headers first) and its whole body, which ends the stream. */
  request(fields: readonly HeaderField[], body: Buffer, handlers: StreamHandlers): ClientStream {
    if (!this.usable) throw new Error('the connection is closing');
    const stream: StreamState = {
      id: 0,
      handlers,
      headerBlock: encodeHeaders(fields),
      body,
      endSent: false,
      sendWindow: 0,
      receiveWindow: STREAM_WINDOW,
      paused: false,
      closed: false,
    };
    this.open(stream);
    return {
      pause: () => {
        stream.paused = true;
      },
      resume: () => {
        stream.paused = false;
        this.grantStreamCredit(stream);
      },
      cancel: () => this.cancel(stream),
    };
  }

  /** Takes no new streams, and closes the connection once the open ones have ended. */
  close(): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    this.onGone();
    this.endIfIdle();
  }

  // --- sending -----------------------------------------------------------------

  private open(stream: StreamState): void {
    if (this.streams.size >= this.peerMaxStreams) {
      this.waiting.push(stream);
      return;
    }
    stream.id = this.nextStreamId;
    this.nextStreamId += 2;
    stream.sendWindow = this.peerInitialWindow;
    this.streams.set(stream.id, stream);
    const block = stream.headerBlock;
    const endStream = stream.body.length === 0 ? Flag.END_STREAM : 0;
    stream.endSent = endStream !== 0;
    // A block larger than a frame goes on in CONTINUATION frames, with nothing in between.
    const frames: Buffer[] = [];
    let offset = 0;
    do {
      const first = offset === 0;
      const chunk = block.subarray(offset, offset + this.peerMaxFrameSize);
      offset += this.peerMaxFrameSize;
      const flags = (first ? endStream : 0) | (offset >= block.length ? Flag.END_HEADERS : 0);
      frames.push(encodeFrame(first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, stream.id, chunk));
    } while (offset < block.length);
    this.write(Buffer.concat(frames));
    this.sendBody(stream);
  }

  /** Sends as much of the body as both flow-control windows allow. */
  private sendBody(stream: StreamState): void {
    while (!stream.endSent && !stream.closed) {
      const size = Math.min(stream.body.length, stream.sendWindow, this.sendWindow, this.peerMaxFrameSize);
      if (size <= 0 && stream.body.length > 0) return; // waits for a WINDOW_UPDATE
      const chunk = stream.body.subarray(0, size);
      stream.body = stream.body.subarray(size);
      stream.sendWindow -= size;
      this.sendWindow -= size;
      stream.endSent = stream.body.length === 0;
      this.write(encodeFrame(FrameType.DATA, stream.endSent ? Flag.END_STREAM : 0, stream.id, chunk));
    }
  }

  private write(bytes: Buffer): void {
    if (!this.closed && !this.socket.destroyed && !this.socket.writableEnded) this.socket.write(bytes);
  }

  private cancel(stream: StreamState): void {
    if (stream.closed) return;
    stream.closed = true;
    if (stream.id === 0) {
      this.waiting.splice(this.waiting.indexOf(stream), 1);
      return;
    }
    this.write(rstStream(stream.id, ErrorCode.CANCEL));
    this.forget(stream);
  }

  /** A stream is over: free its slot for a waiting one. */
  private forget(stream: StreamState): void {
    this.streams.delete(stream.id);
    this.openWaiting();
    this.endIfIdle();
  }

  /** Opens waiting streams into free slots: after close() too (it lets the calls already made finish), not once the peer is going away. */
  private openWaiting(): void {
    while (this.waiting.length > 0 && this.streams.size < this.peerMaxStreams && !this.closed && !this.goingAway) this.open(this.waiting.shift()!);
  }

  /** The stream is over for this client: no frames go out on it after this (RFC 9113, 5.1). */
  private markClosed(stream: StreamState, end: StreamEnd): void {
    stream.closed = true;
    if (stream.id === 0) return;
    // The peer answered before the request was all sent: tell it the rest will not come.
    if (end.kind === 'ended' && !stream.endSent) this.write(rstStream(stream.id, ErrorCode.CANCEL));
    this.forget(stream);
  }

  private endStream(stream: StreamState, end: StreamEnd): void {
    if (stream.closed) return;
    this.markClosed(stream, end);
    stream.handlers.close(end);
  }

  private endIfIdle(): void {
    if ((this.closing || this.goingAway) && this.streams.size === 0 && this.waiting.length === 0 && !this.closed && !this.socket.writableEnded) {
      this.write(goaway(ErrorCode.NO_ERROR));
      this.socket.end();
      // Nothing more is wanted from the peer: a process need not wait for it to close its side.
      this.socket.unref();
      setTimeout(() => this.socket.destroy(), SOCKET_LINGER_MS).unref();
    }
  }

  /** Returns the credit a stream's reader has used, unless it is paused. */
  private grantStreamCredit(stream: StreamState): void {
    const used = STREAM_WINDOW - stream.receiveWindow;
    if (stream.paused || stream.closed || used < STREAM_WINDOW / 2) return;
    stream.receiveWindow = STREAM_WINDOW;
    this.write(windowUpdate(stream.id, used));
  }

  // --- receiving ---------------------------------------------------------------

  private receive(chunk: Buffer): void {
    try {
      for (const frame of this.reader.push(chunk)) {
        if (this.closed) return;
        this.handle(frame);
      }
    } catch (error) {
      if (error instanceof ProtocolError) this.fail(error);
      else throw error;
    }
  }

  private handle(frame: Frame): void {
    if (!this.peerSettingsSeen && frame.type !== FrameType.SETTINGS) {
      throw new ProtocolError('the peer does not speak HTTP/2 (its first frame is not SETTINGS)');
    }
    const onStream = frame.type === FrameType.DATA || frame.type === FrameType.HEADERS || frame.type === FrameType.RST_STREAM || frame.type === FrameType.CONTINUATION;
    if (onStream && frame.streamId === 0) throw new ProtocolError(`a frame of type ${frame.type} on stream 0`);
    const onConnection = frame.type === FrameType.SETTINGS || frame.type === FrameType.PING || frame.type === FrameType.GOAWAY;
    if (onConnection && frame.streamId !== 0) throw new ProtocolError(`a frame of type ${frame.type} on a stream`);
    // A stream this client never opened (even ids are the server's, and it may not push).
    if (onStream && (frame.streamId % 2 === 0 || frame.streamId >= this.nextStreamId)) throw new ProtocolError(`a frame on stream ${frame.streamId}, which this client never opened`);
    if (this.partialBlock && (frame.type !== FrameType.CONTINUATION || frame.streamId !== this.partialBlock.streamId)) {
      throw new ProtocolError('a header block interrupted by another frame');
    }
    switch (frame.type) {
      case FrameType.SETTINGS:
        return this.onSettings(frame);
      case FrameType.PING:
        if (frame.payload.length !== 8) throw new ProtocolError('a PING frame that is not 8 bytes', ErrorCode.FRAME_SIZE_ERROR);
        if (!(frame.flags & Flag.ACK)) this.write(encodeFrame(FrameType.PING, Flag.ACK, 0, frame.payload));
        return;
      case FrameType.GOAWAY:
        return this.onGoaway(frame);
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(frame);
      case FrameType.RST_STREAM: {
        const stream = this.streams.get(frame.streamId);
        if (frame.payload.length !== 4) throw new ProtocolError('an RST_STREAM frame that is not 4 bytes', ErrorCode.FRAME_SIZE_ERROR);
        if (stream) this.endStream(stream, { kind: 'reset', code: frame.payload.readUInt32BE(0) });
        return;
      }
      case FrameType.HEADERS: {
        const block = unpadded(frame, frame.flags & Flag.PRIORITY ? 5 : 0);
        const endStream = (frame.flags & Flag.END_STREAM) !== 0;
        if (frame.flags & Flag.END_HEADERS) return this.onHeaderBlock(frame.streamId, endStream, block);
        this.partialBlock = { streamId: frame.streamId, endStream, chunks: [block], size: block.length };
        return;
      }
      case FrameType.CONTINUATION: {
        const partial = this.partialBlock;
        if (!partial) throw new ProtocolError('a CONTINUATION frame without a header block');
        partial.chunks.push(frame.payload);
        partial.size += frame.payload.length;
        if (partial.size > MAX_HEADER_BLOCK) throw new ProtocolError(`a header block of more than ${MAX_HEADER_BLOCK} bytes`);
        if (frame.flags & Flag.END_HEADERS) {
          this.partialBlock = undefined;
          this.onHeaderBlock(partial.streamId, partial.endStream, Buffer.concat(partial.chunks));
        }
        return;
      }
      case FrameType.DATA:
        return this.onData(frame);
      case FrameType.PUSH_PROMISE:
        throw new ProtocolError('a PUSH_PROMISE, though this client disabled push');
      default:
        // PRIORITY, and frame types this client does not know: ignored (RFC 9113, 4.1 and 5.5).
        return;
    }
  }

  private onSettings(frame: Frame): void {
    if (frame.flags & Flag.ACK) {
      if (frame.payload.length !== 0) throw new ProtocolError('a SETTINGS acknowledgement with a payload', ErrorCode.FRAME_SIZE_ERROR);
      return;
    }
    if (frame.payload.length % 6 !== 0) throw new ProtocolError('a SETTINGS frame of the wrong size', ErrorCode.FRAME_SIZE_ERROR);
    for (let offset = 0; offset < frame.payload.length; offset += 6) {
      const id = frame.payload.readUInt16BE(offset);
      const value = frame.payload.readUInt32BE(offset + 2);
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ProtocolError('an initial window larger than 2^31-1', ErrorCode.FLOW_CONTROL_ERROR);
        for (const stream of this.streams.values()) {
          stream.sendWindow += value - this.peerInitialWindow;
          if (stream.sendWindow > MAX_WINDOW) throw new ProtocolError('a stream window grew past 2^31-1', ErrorCode.FLOW_CONTROL_ERROR);
        }
        this.peerInitialWindow = value;
      } else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < MAX_FRAME_SIZE || value > 2 ** 24 - 1) throw new ProtocolError(`a maximum frame size of ${value}`);
        this.peerMaxFrameSize = value;
      } else if (id === Setting.MAX_CONCURRENT_STREAMS) {
        this.peerMaxStreams = value;
      }
    }
    this.write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    this.peerSettingsSeen = true;
    for (const stream of [...this.streams.values()]) this.sendBody(stream);
    this.openWaiting();
  }

  private onGoaway(frame: Frame): void {
    if (frame.payload.length < 8) throw new ProtocolError('a GOAWAY frame shorter than 8 bytes', ErrorCode.FRAME_SIZE_ERROR);
    const lastStreamId = frame.payload.readUInt32BE(0) & MAX_WINDOW;
    const code = frame.payload.readUInt32BE(4);
    if (code !== ErrorCode.NO_ERROR) {
      const debug = frame.payload.subarray(8).toString('latin1').replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
      this.goawayError ??= new Error(`the master closed the connection (HTTP/2 error ${code}${debug ? `: ${debug}` : ''})`);
    }
    const wasUsable = this.usable;
    this.goingAway = true;
    if (wasUsable) this.onGone();
    // Streams the peer never processed: the caller may send them again elsewhere.
    for (const stream of [...this.streams.values()]) if (stream.id > lastStreamId) this.endStream(stream, { kind: 'refused' });
    for (const stream of this.waiting.splice(0)) this.endStream(stream, { kind: 'refused' });
    this.endIfIdle();
  }

  private onWindowUpdate(frame: Frame): void {
    if (frame.payload.length !== 4) throw new ProtocolError('a WINDOW_UPDATE frame that is not 4 bytes', ErrorCode.FRAME_SIZE_ERROR);
    const increment = frame.payload.readUInt32BE(0) & MAX_WINDOW;
    if (frame.streamId === 0) {
      if (increment === 0) throw new ProtocolError('a WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new ProtocolError('the connection window grew past 2^31-1', ErrorCode.FLOW_CONTROL_ERROR);
      for (const stream of [...this.streams.values()]) this.sendBody(stream);
      return;
    }
    const stream = this.streams.get(frame.streamId);
    if (!stream) return;
    if (increment === 0 || stream.sendWindow + increment > MAX_WINDOW) {
      // A stream error: that stream is reset, the connection goes on (RFC 9113, 6.9).
      const code = increment === 0 ? ErrorCode.PROTOCOL_ERROR : ErrorCode.FLOW_CONTROL_ERROR;
      this.write(rstStream(stream.id, code));
      stream.endSent = true;
      return this.endStream(stream, { kind: 'reset', code });
    }
    stream.sendWindow += increment;
    this.sendBody(stream);
  }

  private onHeaderBlock(streamId: number, endStream: boolean, block: Buffer): void {
    // Decoded even for a stream this client has cancelled: the table is the connection's.
    let fields: HeaderField[];
    try {
      fields = this.decoder.decode(block);
    } catch (error) {
      if (error instanceof HpackError) throw new ProtocolError(error.message, ErrorCode.COMPRESSION_ERROR);
      throw error;
    }
    const stream = this.streams.get(streamId);
    if (!stream || stream.closed) return;
    const headers = toHeaders(fields);
    // An informational response (1xx) is not the response.
    if (!endStream && String(headers[':status'] ?? '').startsWith('1')) return;
    if (!endStream) return stream.handlers.headers(headers, false);
    const end: StreamEnd = { kind: 'ended' };
    this.markClosed(stream, end);
    stream.handlers.headers(headers, true);
    stream.handlers.close(end);
  }

  private onData(frame: Frame): void {
    const size = frame.payload.length;
    this.receiveWindow -= size;
    if (this.receiveWindow < 0) throw new ProtocolError('the peer sent past the connection window', ErrorCode.FLOW_CONTROL_ERROR);
    // The connection's credit comes back at once: a paused stream is held back by its own window.
    if (CONNECTION_WINDOW - this.receiveWindow >= CONNECTION_WINDOW / 2) {
      this.write(windowUpdate(0, CONNECTION_WINDOW - this.receiveWindow));
      this.receiveWindow = CONNECTION_WINDOW;
    }
    const stream = this.streams.get(frame.streamId);
    if (!stream || stream.closed) return;
    stream.receiveWindow -= size;
    if (stream.receiveWindow < 0) throw new ProtocolError('the peer sent past a stream window', ErrorCode.FLOW_CONTROL_ERROR);
    const data = unpadded(frame);
    if (!(frame.flags & Flag.END_STREAM)) {
      if (data.length > 0) stream.handlers.data(data);
      this.grantStreamCredit(stream);
      return;
    }
    const end: StreamEnd = { kind: 'ended' };
    this.markClosed(stream, end);
    if (data.length > 0) stream.handlers.data(data);
    stream.handlers.close(end);
  }

  // --- the end -------------------------------------------------------------------

  /** A connection error: tell the peer why, and close. */
  private fail(error: ProtocolError): void {
    this.error ??= error;
    this.write(goaway(error.code));
    this.socket.destroy();
    this.lost();
  }

  private lost(): void {
    if (this.closed) return;
    const wasUsable = this.usable;
    this.closed = true;
    if (wasUsable) this.onGone();
    const end: StreamEnd = { kind: 'lost', error: this.error ?? this.goawayError, setUp: this.peerSettingsSeen };
    for (const stream of [...this.waiting.splice(0), ...this.streams.values()]) this.endStream(stream, end);
  }
}

function uint32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value, 0);
  return bytes;
}

function windowUpdate(streamId: number, increment: number): Buffer {
  return encodeFrame(FrameType.WINDOW_UPDATE, 0, streamId, uint32(increment));
}

function rstStream(streamId: number, code: number): Buffer {
  return encodeFrame(FrameType.RST_STREAM, 0, streamId, uint32(code));
}

/** A GOAWAY with last-stream-id 0: this client never accepts streams from the peer. */
function goaway(code: number): Buffer {
  return encodeFrame(FrameType.GOAWAY, 0, 0, Buffer.concat([uint32(0), uint32(code)]));
}

function settingsPayload(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return payload;
}
