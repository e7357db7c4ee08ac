/**
 * The HTTP/1.1 connections of one of the master's own ports (metrics, health
 * probes) once a successor master has taken the port over.
 *
 * A scraper or prober keeps its connection alive between requests, and the
 * old master must not close it under a request about to arrive: the client
 * would read ECONNRESET (a kept-alive prober did, in 1 CI run of 3 on Node
 * 20, when the old master closed all its connections on exit). So, from the
 * handover on:
 *   - every response says `Connection: close` (the caller adds the header
 *     while `handedOver` is true), so a connection closes after its next
 *     request, answered;
 *   - a connection with no request in flight is closed once it has been
 *     quiet for IDLE_GRACE_MS (the workers' drain rule 3): a client idle
 *     that long is the only one that can still race the close;
 *   - closing the port waits for both, up to CLOSE_WAIT_MAX_MS, and only
 *     then destroys what is left.
 */
import type http from 'node:http';
import type net from 'node:net';

/** As the workers' drain: an idle keep-alive connection is closed after this long. */
export const IDLE_GRACE_MS = 1000;
/** close() destroys what is still open after this long. */
export const CLOSE_WAIT_MAX_MS = 5000;

export class HandedOverHttp {
  /** Open connections → requests in flight on each. */
  private readonly open = new Map<net.Socket, number>();
  private settled: (() => void) | undefined;
  private handedOverYet = false;

  constructor(private readonly closeWaitMaxMs = CLOSE_WAIT_MAX_MS) {}

  /** Has a successor taken the port over? */
  get handedOver(): boolean {
    return this.handedOverYet;
  }

  /** Every HTTP/1.1 connection of the port, as it is accepted. */
  track(socket: net.Socket): void {
    this.open.set(socket, 0);
    socket.once('close', () => {
      this.open.delete(socket);
      if (this.open.size === 0) this.settled?.();
    });
    // Quiet for the grace after the handover with nothing in flight (a request in flight clears the timer).
    socket.on('timeout', () => {
      if (this.handedOver && this.open.get(socket) === 0) socket.destroy();
    });
    // Accepted just before the handover, its first bytes read after it.
    if (this.handedOver) this.closeWhenQuiet(socket);
  }

  /** Every request, as it arrives; returns the headers its response must carry. */
  request(req: http.IncomingMessage, res: http.ServerResponse): Record<string, string> {
    const socket = req.socket;
    const count = this.open.get(socket);
    if (count !== undefined) {
      this.open.set(socket, count + 1);
      if (this.handedOver) socket.setTimeout(0); // Answering: the idle grace starts again when it is answered.
      res.once('close', () => {
        const left = (this.open.get(socket) ?? 1) - 1;
        if (this.open.has(socket)) this.open.set(socket, left);
        if (this.handedOver && left === 0) this.closeWhenQuiet(socket);
      });
    }
    return this.handedOver ? { Connection: 'close' } : {};
  }

  /** The successor serves the port from now on. */
  handOver(): void {
    if (this.handedOverYet) return;
    this.handedOverYet = true;
    for (const [socket, inFlight] of this.open) if (inFlight === 0) this.closeWhenQuiet(socket);
  }

  /**
   * Closes every connection: handed over, once each has closed by the rules
   * above or closeWaitMaxMs later, their end forced; otherwise at once.
   */
  async close(): Promise<void> {
    if (this.handedOverYet && this.open.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.closeWaitMaxMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.settled = done;
      });
      this.settled = undefined;
    }
    for (const socket of this.open.keys()) socket.destroy();
  }

  /** Closed after IDLE_GRACE_MS with nothing read or written; a request arriving meanwhile is answered (and closes it). */
  private closeWhenQuiet(socket: net.Socket): void {
    socket.setTimeout(IDLE_GRACE_MS);
  }
}
