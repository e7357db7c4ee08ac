/**
 * Bounded request loops and what they saw, whatever the protocol: the
 * HTTP/1.1 load in net.ts, the HTTP/2 load in h2.ts and the gRPC load in
 * greeter.ts all count the same way.
 */

export interface Reply {
  /** When it was sent and answered (Date.now()). */
  sentAt: number;
  answeredAt: number;
  body: string;
}

export interface LoadStats {
  ok: number;
  failed: number;
  /** Failures by error code or message. */
  errors: Record<string, number>;
  /** Answers by body. */
  bodies: Record<string, number>;
  /** Bodies in the order they arrived (per loop, repeats collapsed). */
  sequences: string[][];
  /** Every answered request. */
  replies: Reply[];
}

export interface Load {
  /** The answers so far. */
  peek(): Reply[];
  /** Ends the loops (each finishes its current request) and returns the counts. */
  stop(): Promise<LoadStats>;
}

/**
 * Runs each loop until stop() or `maxRequests` calls. A call resolves with
 * the answer's body (any answer counts as served) or rejects: a failure,
 * counted by its error code or message. `cleanup` runs once the loops end.
 */
export function runLoops(loops: (() => Promise<string>)[], { maxRequests = 20_000, cleanup = () => {} } = {}): Load {
  const stats: LoadStats = { ok: 0, failed: 0, errors: {}, bodies: {}, sequences: [], replies: [] };
  let running = true;
  const loop = async (call: () => Promise<string>) => {
    const sequence: string[] = [];
    stats.sequences.push(sequence);
    for (let i = 0; running && i < maxRequests; i++) {
      const sentAt = Date.now();
      try {
        const body = await call();
        stats.ok++;
        stats.replies.push({ sentAt, answeredAt: Date.now(), body });
        stats.bodies[body] = (stats.bodies[body] ?? 0) + 1;
        if (sequence.at(-1) !== body) sequence.push(body);
      } catch (error) {
        stats.failed++;
        const key = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        stats.errors[key] = (stats.errors[key] ?? 0) + 1;
      }
    }
  };
  const running$ = loops.map(loop);
  return {
    peek: () => stats.replies,
    async stop() {
      running = false;
      await Promise.all(running$);
      cleanup();
      return stats;
    },
  };
}
