/**
 * HPACK (RFC 7541) for one client connection: a decoder with the static and
 * dynamic tables for what the master sends, and an encoder that sends every
 * field as a literal that is never indexed. A client command sends a handful
 * of small headers once or twice; literals cost a few bytes and leave the
 * master's decoder table untouched, so there is no encoder state to keep.
 */
import { huffmanDecode } from './huffman.js';

export type HeaderField = readonly [name: string, value: string];

/** RFC 7541, Appendix A. */
const STATIC_TABLE: readonly HeaderField[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** The size the decoder table starts with, and the most this client allows (SETTINGS_HEADER_TABLE_SIZE, left at its default). */
export const HEADER_TABLE_SIZE = 4096;
/** Decoded names and values of one block, in bytes, beyond which it is refused: indexed fields expand a small block a lot. */
export const MAX_HEADER_LIST_SIZE = 1024 * 1024;

export class HpackError extends Error {
  constructor(message: string) {
    super(`HPACK: ${message}`);
  }
}

/** Reads HPACK integers and strings from one header block. */
class BlockReader {
  offset = 0;
  constructor(private readonly block: Uint8Array) {}

  get done(): boolean {
    return this.offset >= this.block.length;
  }

  peek(): number {
    return this.block[this.offset]!;
  }

  /** An integer with an N-bit prefix (RFC 7541, 5.1). */
  integer(prefixBits: number): number {
    if (this.done) throw new HpackError('a header block ends inside an integer');
    const max = (1 << prefixBits) - 1;
    let value = this.block[this.offset++]! & max;
    if (value < max) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.done) throw new HpackError('a header block ends inside an integer');
      if (shift > 28) throw new HpackError('an integer is too long');
      const byte = this.block[this.offset++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (value > 0x7fffffff) throw new HpackError('an integer is too large');
      if ((byte & 0x80) === 0) return value;
    }
  }

  /** A string literal (RFC 7541, 5.2), as the bytes' Latin-1 text (header values are bytes). */
  string(): string {
    if (this.done) throw new HpackError('a header block ends before a string');
    const huffman = (this.peek() & 0x80) !== 0;
    const length = this.integer(7);
    if (this.offset + length > this.block.length) throw new HpackError('a string runs past the end of its header block');
    const bytes = this.block.subarray(this.offset, this.offset + length);
    this.offset += length;
    if (!huffman) return Buffer.from(bytes).toString('latin1');
    try {
      return huffmanDecode(bytes).toString('latin1');
    } catch (error) {
      throw new HpackError((error as Error).message);
    }
  }
}

const entrySize = ([name, value]: HeaderField) => Buffer.byteLength(name, 'latin1') + Buffer.byteLength(value, 'latin1') + 32;

/** Decodes the header blocks of one connection, in the order they arrive (the dynamic table is the connection's). */
export class HpackDecoder {
  private readonly dynamic: HeaderField[] = [];
  private size = 0;
  private maxSize = HEADER_TABLE_SIZE;

  decode(block: Uint8Array): HeaderField[] {
    const reader = new BlockReader(block);
    const fields: HeaderField[] = [];
    let fieldSeen = false;
    let listSize = 0;
    const add = (field: HeaderField) => {
      listSize += entrySize(field);
      if (listSize > MAX_HEADER_LIST_SIZE) throw new HpackError(`a header list of more than ${MAX_HEADER_LIST_SIZE} bytes`);
      fields.push(field);
    };
    while (!reader.done) {
      const first = reader.peek();
      if (first & 0x80) {
        // Indexed header field.
        add(this.lookup(reader.integer(7)));
      } else if (first & 0x40) {
        // Literal with incremental indexing.
        const index = reader.integer(6);
        const field: HeaderField = [index === 0 ? reader.string() : this.lookup(index)[0], reader.string()];
        add(field);
        this.insert(field);
      } else if (first & 0x20) {
        // Dynamic table size update: only at the start of a block, and within what this client allows.
        if (fieldSeen) throw new HpackError('a table size update after a header field');
        const size = reader.integer(5);
        if (size > HEADER_TABLE_SIZE) throw new HpackError(`a table size of ${size} (at most ${HEADER_TABLE_SIZE})`);
        this.maxSize = size;
        this.evict(0);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = reader.integer(4);
        add([index === 0 ? reader.string() : this.lookup(index)[0], reader.string()]);
      }
      fieldSeen = true;
    }
    return fields;
  }

  private lookup(index: number): HeaderField {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const field = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!field) throw new HpackError(`index ${index} is past the end of the table`);
    return field;
  }

  private insert(field: HeaderField): void {
    const size = entrySize(field);
    this.evict(size);
    // An entry larger than the whole table empties it and is not added (RFC 7541, 4.4).
    if (size > this.maxSize) return;
    this.dynamic.unshift(field);
    this.size += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  private evict(room: number): void {
    while (this.dynamic.length > 0 && this.size + room > this.maxSize) this.size -= entrySize(this.dynamic.pop()!);
  }
}

function encodeInteger(out: number[], value: number, prefixBits: number, firstByte: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByte | value);
    return;
  }
  out.push(firstByte | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

function encodeString(out: number[], text: string): void {
  const bytes = Buffer.from(text, 'latin1');
  encodeInteger(out, bytes.length, 7, 0x00);
  for (const byte of bytes) out.push(byte);
}

/** A header block of literals never indexed, names and values raw (RFC 7541, 6.2.3). */
export function encodeHeaders(fields: readonly HeaderField[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    out.push(0x10);
    encodeString(out, name);
    encodeString(out, value);
  }
  return Buffer.from(out);
}
