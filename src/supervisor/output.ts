/**
 * Worker output: split into lines, prefixed with who wrote them, and the last
 * lines kept for error reports.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** A fixed-size ring of the most recent lines. */
export class TailBuffer {
  private readonly lines: string[] = [];
  constructor(private readonly capacity = 50) {}

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.shift();
  }

  get(): string[] {
    return [...this.lines];
  }
}

/** Calls onLine for every complete line of a stream, and for a final partial line at its end. */
export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  stream.on('data', (chunk: Buffer) => {
    pending += decoder.write(chunk);
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      onLine(pending.slice(0, newline).replace(/\r$/, ''));
      pending = pending.slice(newline + 1);
    }
  });
  stream.on('end', () => {
    pending += decoder.end();
    if (pending) onLine(pending);
    pending = '';
  });
}

const ERROR_LINE = /^(?:Uncaught )?[A-Z]?[A-Za-z]*(?:Error|Exception)\b.*?:\s/;

/**
 * The line that best explains why a process died: the last line that looks
 * like a thrown error ("Error: Cannot find module 'x'"), else the last line
 * that is not Node's version footer.
 */
export function summarizeStderr(lines: readonly string[]): string {
  const meaningful = lines.map((l) => l.trim()).filter((l) => l && !/^Node\.js v\d/.test(l));
  for (let i = meaningful.length - 1; i >= 0; i--) {
    if (ERROR_LINE.test(meaningful[i]!)) return meaningful[i]!;
  }
  return meaningful.at(-1) ?? '';
}
