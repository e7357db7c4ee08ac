/**
 * Worker-provided text (a worker's stderr becomes its `reason`) shown on a
 * terminal or in a text log: control characters are written as visible
 * escapes, so a worker cannot move the cursor, rewrite a line with `\r`,
 * clear the screen or forge a log line with a newline. JSON output needs none
 * of this (JSON.stringify escapes controls itself).
 */

/**
 * C0 controls (tab included: it shifts columns), DEL, C1 controls, and the
 * Unicode bidirectional overrides and isolates, which reorder what follows
 * them on screen.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e' };

/** `\e[2J` for ESC [ 2 J; `\r`, `\n`, `\t`; `\x07`, `\u202e` for the rest. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}
