/**
 * How the CLI ends: its exit codes, and a failure turned into one line on
 * stderr (and, with --json, one JSON object on stdout).
 */
import { Status as status } from '../common/status.js';
import { LiveswapClientError } from '../client/errors.js';
import { LiveswapError, SettingError } from '../common/errors.js';
import { escapeControl } from '../common/escape.js';

/**
 * 0 success, 1 the operation failed, 2 bad usage, 3 no master reachable, 4 the master refused the token,
 * 5 a fleet rollout failed and a host could not be rolled back (the fleet runs two releases).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, unauthenticated: 4, rollbackFailed: 5 } as const;

/** A bad command line: exit 2, one line naming the flag. */
export class UsageError extends Error {}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/**
 * Writes the error as the CLI's one line and returns the exit code it means.
 * The message is escaped (escape.ts): a rollback's carries a line of the
 * failing worker's stderr, which must not drive the terminal.
 */
export function report(error: unknown, { json = false }: { json?: boolean | undefined }): number {
  if (error instanceof UsageError || error instanceof SettingError) {
    process.stderr.write(`liveswap: ${escapeControl(error.message)}\n`);
    return EXIT.usage;
  }
  if (error instanceof LiveswapClientError || error instanceof LiveswapError) {
    process.stderr.write(`liveswap: ${escapeControl(error.message)}\n`);
    if (json && error instanceof LiveswapClientError) {
      // Machines get the whole story, the failing worker's stderr included.
      print(JSON.stringify({ error: { code: error.codeName, message: error.message, stderrTail: error.stderrTail } }));
    }
    if (error instanceof LiveswapClientError && error.code === status.UNAUTHENTICATED) return EXIT.unauthenticated;
    return error instanceof LiveswapClientError && error.message.startsWith('no master at') ? EXIT.unreachable : EXIT.failed;
  }
  process.stderr.write(`liveswap: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  return EXIT.failed;
}
