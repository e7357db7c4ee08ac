/** HTTP/2 framing (RFC 9113, section 4 and 6): frame types, flags, error codes, and splitting a byte stream into frames. */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** RFC 9113, section 7. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
} as const;

/** The largest frame payload this client accepts: the default, which it never raises. */
export const MAX_FRAME_SIZE = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A connection error: the client closes the connection (RFC 9113, 5.4.1). */
export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly code: number = ErrorCode.PROTOCOL_ERROR,
  ) {
    super(`Protocol error: ${message}`);
  }
}

export function encodeFrame(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const frame = Buffer.allocUnsafe(9 + payload.length);
  frame.writeUIntBE(payload.length, 0, 3);
  frame[3] = type;
  frame[4] = flags;
  frame.writeUInt32BE(streamId & MAX_WINDOW, 5);
  frame.set(payload, 9);
  return frame;
}

/** Splits the bytes of a connection into frames as they arrive. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  /** The frames now complete; throws ProtocolError on a frame larger than MAX_FRAME_SIZE (or bytes that are not HTTP/2 at all). */
  push(chunk: Buffer): Frame[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: Frame[] = [];
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (length > MAX_FRAME_SIZE) throw new ProtocolError(`a frame of ${length} bytes (at most ${MAX_FRAME_SIZE}): the peer does not speak HTTP/2`, ErrorCode.FRAME_SIZE_ERROR);
      if (this.buffered.length < 9 + length) break;
      frames.push({
        type: this.buffered[3]!,
        flags: this.buffered[4]!,
        streamId: this.buffered.readUInt32BE(5) & MAX_WINDOW,
        payload: this.buffered.subarray(9, 9 + length),
      });
      this.buffered = this.buffered.subarray(9 + length);
    }
    return frames;
  }
}

/** A DATA or HEADERS payload without its padding (and HEADERS' priority fields). */
export function unpadded(frame: Frame, priorityBytes = 0): Buffer {
  let payload = frame.payload;
  let padding = 0;
  if (frame.flags & Flag.PADDED) {
    if (payload.length < 1) throw new ProtocolError('a padded frame without its pad length');
    padding = payload[0]!;
    payload = payload.subarray(1);
  }
  payload = payload.subarray(priorityBytes);
  if (padding > payload.length) throw new ProtocolError('padding longer than the frame');
  return payload.subarray(0, payload.length - padding);
}
