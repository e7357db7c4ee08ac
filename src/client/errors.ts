/**
 * A failed call, as a typed error: the gRPC status, a one-line message a
 * person can act on, and (for rollbacks and failed starts) the failing
 * worker's stderr tail from the trailing metadata.
 */
import { status, type ServiceError } from '@grpc/grpc-js';

export const STDERR_TAIL_KEY = 'liveswap-stderr-tail-bin';

export class LiveswapClientError extends Error {
  constructor(
    /** The gRPC status code. */
    readonly code: status,
    message: string,
    /** The failing worker's last stderr lines, when the master sent them. */
    readonly stderrTail: string[] = [],
  ) {
    super(message);
    this.name = 'LiveswapClientError';
  }

  /** The status code's name, e.g. "FAILED_PRECONDITION". */
  get codeName(): string {
    return status[this.code] ?? String(this.code);
  }
}

function unreachableReason(details: string): string | undefined {
  if (/ECONNREFUSED/.test(details)) return 'connection refused';
  if (/ENOENT/.test(details)) return 'no such socket';
  if (/EACCES/.test(details)) return 'permission denied';
  if (/ETIMEDOUT/.test(details)) return 'timed out';
  if (/ECONNRESET/.test(details)) return 'connection reset';
  if (/Protocol error/i.test(details)) return 'something else is listening there: it does not speak gRPC';
  // Any other failure to connect: grpc-js says "No connection established. Last error: <why> (<time>)…".
  const last = /No connection established\. Last error: (.*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\.?(?: Resolution note.*)?$/.exec(details);
  return last ? last[1]!.replace(/^Error: /, '') : undefined;
}

export function wrapClientError(error: ServiceError, endpoint: string): LiveswapClientError {
  const details = error.details || error.message;
  const tail = error.metadata?.get(STDERR_TAIL_KEY) ?? [];
  const stderrTail = tail.flatMap((value) => value.toString().split('\n')).filter((line) => line !== '');
  if (error.code === status.UNAVAILABLE) {
    const reason = unreachableReason(details);
    if (reason) return new LiveswapClientError(error.code, `no master at ${endpoint} (${reason})`, stderrTail);
  }
  if (error.code === status.DEADLINE_EXCEEDED) {
    return new LiveswapClientError(error.code, `no answer from the master at ${endpoint} before the deadline`, stderrTail);
  }
  return new LiveswapClientError(error.code, details, stderrTail);
}
