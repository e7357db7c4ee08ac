/**
 * Expected failures carry the gRPC status they map to, so the service layer
 * never guesses. Anything thrown that is not a LiveswapError is a bug and
 * becomes INTERNAL with a logged stack.
 */
import { Status as status } from './status.js';

export { status as Status };

export class LiveswapError extends Error {
  constructor(
    readonly code: status,
    message: string,
    /** The failing worker's last stderr lines, for rollbacks and failed starts. */
    readonly stderrTail: readonly string[] = [],
  ) {
    super(message);
    this.name = 'LiveswapError';
  }
}

/**
 * The trailing metadata key that carries a LiveswapError's stderr tail over
 * gRPC (UTF-8; a -bin key, so any bytes travel). The service writes it, the
 * client reads it.
 */
export const STDERR_TAIL_KEY = 'liveswap-stderr-tail-bin';

/**
 * The trailing metadata key ("1") on the WatchWorkers streams a replaced
 * master ends (UpgradeMaster): the same address now reaches its successor.
 */
export const MASTER_REPLACED_KEY = 'liveswap-master-replaced';

export const invalidArgument = (message: string) => new LiveswapError(status.INVALID_ARGUMENT, message);

/**
 * A setting with a value out of its range (INVALID_ARGUMENT), as opposed to a
 * path the master looked at and refused: the CLI reports it as a usage error
 * (exit 2), naming its flag.
 */
export class SettingError extends LiveswapError {
  constructor(message: string) {
    super(status.INVALID_ARGUMENT, message);
    this.name = 'SettingError';
  }
}

/**
 * How a setting is named in an error: by its option name in the API (the
 * default), by its flag on the command line (`--ready-timeout`).
 */
export type Spell = (setting: string) => string;
export const optionName: Spell = (setting) => (setting === 'tls' ? 'tls.cert and tls.key' : setting);
export const failedPrecondition = (message: string, stderrTail: readonly string[] = []) =>
  new LiveswapError(status.FAILED_PRECONDITION, message, stderrTail);
export const aborted = (message: string) => new LiveswapError(status.ABORTED, message);
export const unavailable = (message: string) => new LiveswapError(status.UNAVAILABLE, message);

/** Why a server could not bind, in words (the error's code, or its message). */
export function bindFailureReason(error: Error): string {
  const text = error.message;
  if (/EADDRINUSE/.test(text)) return 'address already in use';
  if (/EACCES/.test(text)) return 'permission denied';
  if (/EADDRNOTAVAIL/.test(text)) return 'address not available on this machine';
  if (/ENOENT|ENOTDIR/.test(text)) return 'no such file or directory';
  if (/EROFS/.test(text)) return 'read-only file system';
  return text;
}
