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

/**
 * The longest line kept whole. A worker that writes megabytes without a
 * newline would otherwise be buffered without limit, and a crashed one's
 * line copied into every status reply.
 */
export const MAX_LINE_CHARS = 16 * 1024;

/**
 * Calls onLine for every complete line of a stream, and for a final partial
 * line at its end. A line longer than `maxChars` is cut: its first
 * `maxChars` characters, then how many were dropped; no more than that is
 * ever held.
 */
export function forEachLine(stream: Readable, onLine: (line: string) => void, maxChars = MAX_LINE_CHARS): void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let dropped = 0;
  const emit = (line: string) => {
    onLine(dropped > 0 ? `${line}… [${dropped} more characters cut]` : line);
    dropped = 0;
  };
  stream.on('data', (chunk: Buffer) => {
    pending += decoder.write(chunk);
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      let line = pending.slice(0, newline).replace(/\r$/, '');
      if (line.length > maxChars) {
        dropped += line.length - maxChars;
        line = line.slice(0, maxChars);
      }
      emit(line);
      pending = pending.slice(newline + 1);
    }
    if (pending.length > maxChars) {
      dropped += pending.length - maxChars;
      pending = pending.slice(0, maxChars);
    }
  });
  stream.on('end', () => {
    pending += decoder.end();
    if (pending.length > maxChars) {
      dropped += pending.length - maxChars;
      pending = pending.slice(0, maxChars);
    }
    if (pending || dropped > 0) emit(pending);
    pending = '';
  });
}

const ERROR_LINE = /^(?:Uncaught )?[A-Z]?[A-Za-z]*(?:Error|Exception)\b.*?:\s/;

/**
 * The last lines of `lines` that fit in `maxChars` altogether (the one
 * nearest the end cut to fit, if even it is too long): a crashed worker's
 * stderr tail travels in every GetStatus and WatchWorkers reply.
 */
export function tailWithin(lines: readonly string[], maxChars: number): string[] {
  const kept: string[] = [];
  let left = maxChars;
  for (let i = lines.length - 1; i >= 0 && left > 0; i--) {
    const line = lines[i]!;
    kept.unshift(line.length <= left ? line : `${line.slice(0, Math.max(0, left - 1))}…`);
    left -= line.length;
  }
  return kept;
}

/** The most of a stderr line that becomes a worker's `reason`, which every GetStatus and WatchWorkers reply carries. */
export const MAX_SUMMARY_CHARS = 300;

/**
 * The line that best explains why a process died: the last line that looks
 * like a thrown error ("Error: Cannot find module 'x'"), else the last line
 * that is not Node's version footer; at most MAX_SUMMARY_CHARS of it.
 */
export function summarizeStderr(lines: readonly string[]): string {
  const meaningful = lines.map((l) => l.trim()).filter((l) => l && !/^Node\.js v\d/.test(l));
  let summary = meaningful.at(-1) ?? '';
  for (let i = meaningful.length - 1; i >= 0; i--) {
    if (ERROR_LINE.test(meaningful[i]!)) {
      summary = meaningful[i]!;
      break;
    }
  }
  return summary.length > MAX_SUMMARY_CHARS ? `${summary.slice(0, MAX_SUMMARY_CHARS)}…` : summary;
}
