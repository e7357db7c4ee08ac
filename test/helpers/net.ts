import http from 'node:http';
import net from 'node:net';

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export function get(port: number, path = '/', agent?: http.Agent | false, timeoutMs = 10_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: agent ?? false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

/** A raw TCP client on 127.0.0.1: what the server sent so far, as text, and when it closed. Errors only close it. */
export function rawClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  return { socket, received: () => received, closed };
}

/** Is anything accepting connections on the port? */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

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

/**
 * Light steady load: `keepAlive` clients reusing one socket each and `close`
 * clients opening a new connection per request, each looping until stop()
 * or until `maxRequests` per client. Bounded in time by the caller's stop().
 */
export function startLoad(
  port: number,
  { keepAlive = 4, close = 4, maxRequests = 20_000, path = '/' } = {},
): { stop(): Promise<LoadStats>; peek(): LoadStats['replies'] } {
  const stats: LoadStats = { ok: 0, failed: 0, errors: {}, bodies: {}, sequences: [], replies: [] };
  let running = true;
  const agents: http.Agent[] = [];
  const loop = async (agent: http.Agent | false) => {
    const sequence: string[] = [];
    stats.sequences.push(sequence);
    for (let i = 0; running && i < maxRequests; i++) {
      try {
        // Any HTTP answer counts as served (the seed's v2 answers 404 by design);
        // a failure is a request that got no answer: reset, refused, hung.
        const sentAt = Date.now();
        const reply = await get(port, path, agent, 5000);
        stats.ok++;
        stats.replies.push({ sentAt, answeredAt: Date.now(), body: reply.body });
        stats.bodies[reply.body] = (stats.bodies[reply.body] ?? 0) + 1;
        if (sequence.at(-1) !== reply.body) sequence.push(reply.body);
      } catch (error) {
        stats.failed++;
        const key = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        stats.errors[key] = (stats.errors[key] ?? 0) + 1;
      }
    }
  };
  const loops = [
    ...Array.from({ length: keepAlive }, () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      return loop(agent);
    }),
    ...Array.from({ length: close }, () => loop(false)),
  ];
  return {
    peek: () => stats.replies,
    async stop() {
      running = false;
      await Promise.all(loops);
      for (const agent of agents) agent.destroy();
      return stats;
    },
  };
}
