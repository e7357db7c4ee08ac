/**
 * A failed call, as a typed error: the gRPC status, a one-line message a
 * person can act on, and (for rollbacks and failed starts) the failing
 * worker's stderr tail from the trailing metadata.
 */
import { Status as status } from '../common/status.js';
import type { CallError } from './transport.js';
import { MASTER_REPLACED_KEY, STDERR_TAIL_KEY } from '../common/errors.js';

export class LiveswapClientError extends Error {
  constructor(
    /** The gRPC status code. */
    readonly code: status,
    message: string,
    /** The failing worker's last stderr lines, when the master sent them. */
    readonly stderrTail: string[] = [],
    /** A WatchWorkers stream ended because UpgradeMaster replaced the master: the same address reaches its successor. */
    readonly masterReplaced = false,
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
  // TLS: the master and the client disagree (see the README's Security section).
  if (/alert certificate required/.test(details)) return 'the master requires a client certificate: give --tls-cert and --tls-key';
  if (/alert (unknown ca|bad certificate|certificate unknown|decrypt error)/.test(details)) {
    return 'the master refused the client certificate: it is not signed by the CA the master trusts';
  }
  if (/self[- ]signed certificate|unable to (verify|get local issuer)|certificate verify failed|unable to get issuer/i.test(details)) {
    return 'the master\'s TLS certificate is not trusted: give its CA with --tls-ca';
  }
  if (/Hostname\/IP does not match|altnames/i.test(details)) {
    return 'the master\'s TLS certificate is for another name: connect to that name or give it with --tls-server-name';
  }
  if (/wrong version number|packet length too long|unknown protocol|http\/1\.x|TLSV1_ALERT_PROTOCOL_VERSION|ssl3_get_record/i.test(details)) {
    return 'TLS mismatch: the client and the master do not agree on TLS (does the master use --tls-cert?)';
  }
  if (/ENOENT/.test(details)) return 'no such socket';
  if (/EACCES/.test(details)) return 'permission denied';
  if (/ETIMEDOUT/.test(details)) return 'timed out';
  if (/ECONNRESET/.test(details)) return 'connection reset';
  if (/Protocol error/i.test(details)) return 'something else is listening there: it does not speak gRPC';
  // A connection that opened but closed before HTTP/2 began (transport.ts):
  // in practice a TLS mismatch, e.g. plain text to a TLS master, or a client
  // certificate the master does not trust.
  if (/^the connection closed during set-up$/.test(details)) {
    return 'the connection failed during set-up: check --tls-ca, --tls-cert and --tls-key against the master\'s TLS settings';
  }
  return undefined;
}

export function wrapClientError(error: CallError, endpoint: string, { tls = false } = {}): LiveswapClientError {
  const details = error.details.replace(/\s*\n\s*/g, ' ');
  const tail = error.binary(STDERR_TAIL_KEY);
  const stderrTail = tail.flatMap((value) => value.toString().split('\n')).filter((line) => line !== '');
  if (error.code === status.UNAVAILABLE) {
    let reason = unreachableReason(details);
    // With TLS 1.3 a master that refuses the client's certificate (or its
    // absence) may just drop the connection after the handshake, before its
    // alert arrives.
    if (tls && reason === 'connection reset') {
      reason = 'the connection was reset during TLS set-up: does the master require a client certificate (--tls-cert, --tls-key), or not trust yours?';
    }
    if (reason) return new LiveswapClientError(error.code, `no master at ${endpoint} (${reason})`, stderrTail);
    if (error.connectionFailed) return new LiveswapClientError(error.code, `no master at ${endpoint} (${details})`, stderrTail);
  }
  if (error.code === status.DEADLINE_EXCEEDED) {
    return new LiveswapClientError(error.code, `no answer from the master at ${endpoint} before the deadline`, stderrTail);
  }
  return new LiveswapClientError(error.code, details, stderrTail, error.trailers[MASTER_REPLACED_KEY] === '1');
}
