/**
 * Closed-loop load for any protocol: each client sends one request, waits for
 * its answer, sends the next. What a request is (HTTP/1.1, HTTP/2, a gRPC
 * call) is the caller's `ask`; this file only loops and counts.
 */

/** One request of one client: resolves with the answer's body (the app's version), rejects when it got no answer. */
export type Ask = () => Promise<string>;

export interface LoadStats {
  ok: number;
  failed: number;
  /** Failures by error code or message. */
  errors: Record<string, number>;
  /** Responses by body. */
  bodies: Record<string, number>;
  /** Bodies in the order they arrived (per client, concatenated). */
  sequences: string[][];
  /** Every answered request: when it was sent and answered (Date.now()), and its body. */
  replies: { sentAt: number; answeredAt: number; body: string }[];
}

export interface Load {
  /** Ends every loop after its current request; resolves with the counts. */
  stop(): Promise<LoadStats>;
  /** The answers so far. */
  peek(): LoadStats['replies'];
}

function failureKey(error: unknown): string {
  const e = error as NodeJS.ErrnoException & { code?: unknown };
  return typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : (e.message ?? String(error));
}

/**
 * Loops every client until stop(), or until `maxRequests` per client.
 * `close` runs once every loop has ended (to close agents, channels, sessions).
 */
export function loopClients(clients: readonly Ask[], { maxRequests = 20_000, close = () => {} } = {}): Load {
  const stats: LoadStats = { ok: 0, failed: 0, errors: {}, bodies: {}, sequences: [], replies: [] };
  let running = true;
  const loop = async (ask: Ask) => {
    const sequence: string[] = [];
    stats.sequences.push(sequence);
    for (let i = 0; running && i < maxRequests; i++) {
      const sentAt = Date.now();
      try {
        const body = await ask();
        stats.ok++;
        stats.replies.push({ sentAt, answeredAt: Date.now(), body });
        stats.bodies[body] = (stats.bodies[body] ?? 0) + 1;
        if (sequence.at(-1) !== body) sequence.push(body);
      } catch (error) {
        stats.failed++;
        const key = failureKey(error);
        stats.errors[key] = (stats.errors[key] ?? 0) + 1;
      }
    }
  };
  const loops = clients.map(loop);
  return {
    peek: () => stats.replies,
    async stop() {
      running = false;
      await Promise.all(loops);
      close();
      return stats;
    },
  };
}
