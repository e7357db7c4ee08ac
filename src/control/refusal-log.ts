/**
 * Refused calls in the master's log, aggregated: the first refusal from a
 * peer is logged at once, with its method and reason; the ones that follow
 * are counted and logged as one line per peer per interval. A client
 * hammering the port without a token (2,000 calls) writes two lines, not
 * 2,000. Peers are told apart by address, not port (every connection has a
 * new port); past MAX_PEERS addresses at once, the rest share one count.
 */
import type { Logger } from '../common/logger.js';

export const REFUSAL_LOG_INTERVAL_MS = 10_000;
const MAX_PEERS = 256;
const OTHER_PEERS = 'other peers';

interface PeerWindow {
  /** Refusals since the last line, by reason. */
  readonly reasons: Map<string, number>;
  readonly timer: NodeJS.Timeout;
}

/** "127.0.0.1:50412" → "127.0.0.1"; "[::1]:50412" and "::1:50412" → "::1". */
export function peerAddress(peer: string): string {
  return peer.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
}

export class RefusalLog {
  readonly #peers = new Map<string, PeerWindow>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
  ) {}

  record(peer: string, method: string, reason: string): void {
    let address = peerAddress(peer);
    if (!this.#peers.has(address) && this.#peers.size >= MAX_PEERS) address = OTHER_PEERS;
    const window = this.#peers.get(address);
    if (window) {
      window.reasons.set(reason, (window.reasons.get(reason) ?? 0) + 1);
      return;
    }
    const seconds = this.intervalMs / 1000;
    this.log.warn(`refused ${method} from ${address}: ${reason} (more refusals from there are counted: one line every ${seconds} s)`);
    const timer = setInterval(() => this.#flush(address), this.intervalMs).unref();
    this.#peers.set(address, { reasons: new Map(), timer });
  }

  /** Logs what a peer's window counted; a peer quiet for a whole interval is forgotten. */
  #flush(address: string): void {
    const window = this.#peers.get(address);
    if (!window) return;
    if (window.reasons.size === 0) {
      clearInterval(window.timer);
      this.#peers.delete(address);
      return;
    }
    const counts = [...window.reasons];
    const total = counts.reduce((sum, [, n]) => sum + n, 0);
    const why = counts.map(([reason, n]) => `${reason} ×${n}`).join(', ');
    this.log.warn(`refused ${total} more call(s) from ${address} in the last ${this.intervalMs / 1000} s: ${why}`);
    window.reasons.clear();
  }

  /** Logs every count not yet logged, and stops the timers (at shutdown). */
  close(): void {
    for (const address of [...this.#peers.keys()]) {
      this.#flush(address);
      const window = this.#peers.get(address);
      if (window) clearInterval(window.timer);
    }
    this.#peers.clear();
  }
}
