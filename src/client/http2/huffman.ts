/**
 * HPACK's Huffman code (RFC 7541, Appendix B), decoding only: the client
 * sends its own header strings raw, and reads what the master's encoder
 * chose to compress.
 *
 * The code is canonical: each symbol's code follows from the code lengths
 * alone (codes of one length are consecutive, in symbol order, and each
 * length starts where the shorter ones left off, shifted). So the table
 * below is the 257 lengths of the RFC, not 257 bit patterns; the build
 * checks that they fill the code space exactly, ending with EOS as thirty
 * 1 bits, and test/http2-client.test.ts checks codes against the RFC's
 * examples.
 */

/** Code lengths in bits for symbols 0–255, then EOS (256). */
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
export const EOS = 256;

/** Each symbol's code, from the lengths (RFC 7541 lists the same values). */
export const CODES: readonly number[] = (() => {
  const symbols = LENGTHS.map((length, symbol) => ({ length, symbol })).sort((a, b) => a.length - b.length || a.symbol - b.symbol);
  const codes: number[] = new Array(LENGTHS.length);
  let code = 0;
  let length = symbols[0]!.length;
  for (const [i, entry] of symbols.entries()) {
    if (i > 0) {
      code = (code + 1) * 2 ** (entry.length - length);
      length = entry.length;
    }
    codes[entry.symbol] = code;
  }
  // A complete prefix code ends on all ones: EOS, thirty 1 bits.
  if (codes[EOS] !== 2 ** 30 - 1) throw new Error('HPACK Huffman lengths do not form a complete code');
  return codes;
})();

/**
 * The decoding tree, flattened: node n's children are at TREE[2n] (bit 0)
 * and TREE[2n + 1] (bit 1); a value ≥ 0 is a child node, -1 - s a leaf for
 * symbol s.
 */
const TREE: Int32Array = (() => {
  const tree: number[] = [0, 0];
  let nodes = 1;
  for (let symbol = 0; symbol < LENGTHS.length; symbol++) {
    const length = LENGTHS[symbol]!;
    const code = CODES[symbol]!;
    let node = 0;
    for (let bit = length - 1; bit >= 0; bit--) {
      const slot = 2 * node + (Math.floor(code / 2 ** bit) & 1);
      if (bit === 0) {
        tree[slot] = -1 - symbol;
      } else {
        if (!tree[slot]) {
          tree[slot] = nodes++;
          tree.push(0, 0);
        }
        node = tree[slot]!;
      }
    }
  }
  return Int32Array.from(tree);
})();

/** Decodes a Huffman-coded string; throws on EOS inside it or on padding that is not a prefix of EOS (RFC 7541, 5.2). */
export function huffmanDecode(input: Uint8Array): Buffer {
  const out: number[] = [];
  let node = 0;
  // Bits read since the last whole symbol, and whether they were all 1s: what padding must be.
  let pendingBits = 0;
  let allOnes = true;
  for (const byte of input) {
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >> bit) & 1;
      const next = TREE[2 * node + one]!;
      pendingBits++;
      allOnes &&= one === 1;
      if (next < 0) {
        const symbol = -1 - next;
        if (symbol === EOS) throw new Error('a Huffman-coded string contains EOS');
        out.push(symbol);
        node = 0;
        pendingBits = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  if (pendingBits > 7 || !allOnes) throw new Error('a Huffman-coded string has invalid padding');
  return Buffer.from(out);
}
