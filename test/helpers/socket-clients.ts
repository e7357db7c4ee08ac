/**
 * Long-lived WebSocket clients that reconnect, as real ones do: `ws` clients
 * that reconnect at once whenever their connection closes, and socket.io
 * clients (WebSocket transport) that reconnect on their own. Each greets the
 * app, then loops asking for its version (bounded per connection), and keeps
 * the version of its current connection and the close code of every
 * connection it lost.
 */
import { io } from 'socket.io-client';
import WebSocket from 'ws';

/** How many messages one connection sends at most (each waits for the answer to the previous one). */
const MAX_ASKS_PER_CONNECTION = 5000;

export interface SocketClient {
  /** The version that answered last on the current connection; undefined while disconnected. */
  version: string | undefined;
  /** When the current connection was first answered by the current version. */
  versionSince: number;
  /** Close codes of the connections it lost (1006: closed without a close frame). */
  closes: number[];
  /** When each of those closes happened (Date.now()). */
  closedAt: number[];
  /** The errors that came with them (a refused handshake, a reset), for the diagnostics. */
  errors: string[];
}

export interface SocketFleet {
  readonly clients: readonly SocketClient[];
  /** How many clients are connected and were last answered by `version`. */
  on(version: string): number;
  /** Every close code, counted. */
  closeCodes(): Record<number, number>;
  /** Every error message (socket.io: and disconnect reason), counted. */
  errors(): Record<string, number>;
  /** Stops reconnecting and closes every connection. */
  stop(): Promise<void>;
}

function newClient(): SocketClient {
  return { version: undefined, versionSince: 0, closes: [], closedAt: [], errors: [] };
}

function answered(client: SocketClient, version: string): void {
  if (client.version !== version) client.versionSince = Date.now();
  client.version = version;
}

function lost(client: SocketClient, code: number): void {
  client.version = undefined;
  client.closes.push(code);
  client.closedAt.push(Date.now());
}

function fleet(clients: SocketClient[], stop: () => Promise<void>): SocketFleet {
  return {
    clients,
    on: (version) => clients.filter((c) => c.version === version).length,
    errors() {
      const errors: Record<string, number> = {};
      for (const error of clients.flatMap((c) => c.errors)) errors[error] = (errors[error] ?? 0) + 1;
      return errors;
    },
    closeCodes() {
      const codes: Record<number, number> = {};
      for (const code of clients.flatMap((c) => c.closes)) codes[code] = (codes[code] ?? 0) + 1;
      return codes;
    },
    stop,
  };
}

/** `count` ws clients of ws://127.0.0.1:port; the app greets each connection with its version and answers every message with it. */
export function wsFleet(port: number, count: number): SocketFleet {
  let running = true;
  const sockets = new Set<WebSocket>();
  const connect = (client: SocketClient) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    sockets.add(ws);
    let asks = 0;
    ws.on('message', (data) => {
      answered(client, String(data));
      if (running && asks++ < MAX_ASKS_PER_CONNECTION) ws.send('version?');
    });
    ws.on('error', (error) => client.errors.push(error.message)); // 'close' follows, with the code that counts
    ws.on('close', (code) => {
      sockets.delete(ws);
      if (!running) return;
      lost(client, code);
      connect(client);
    });
  };
  const clients = Array.from({ length: count }, newClient);
  clients.forEach(connect);
  return fleet(clients, async () => {
    running = false;
    await Promise.all(
      [...sockets].map((ws) => new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000);
      })),
    );
  });
}

/**
 * The socket.io client options of the recipe in docs/upgrade.md: the WebSocket
 * transport only, and a reconnection delay of 250 ms ± 50% instead of the
 * default 1 s ± 50%, so that clients are back within 1 s of the drain.
 */
export const SOCKET_IO_CLIENT_OPTIONS = { transports: ['websocket'], reconnectionDelay: 250 };

/** `count` socket.io clients of http://127.0.0.1:port with the recipe's options. */
export function socketIoFleet(port: number, count: number): SocketFleet {
  const clients = Array.from({ length: count }, newClient);
  let running = true;
  const sockets = clients.map((client) => {
    // A copy: the client writes into the options it is given.
    const socket = io(`http://127.0.0.1:${port}`, structuredClone(SOCKET_IO_CLIENT_OPTIONS));
    let asks = 0;
    const ask = () => {
      if (running && socket.connected && asks++ < MAX_ASKS_PER_CONNECTION) {
        socket.emit('ask', (version: string) => {
          answered(client, version);
          ask();
        });
      }
    };
    socket.on('version', (version: string) => {
      answered(client, version);
      asks = 0;
      ask();
    });
    socket.on('connect_error', (error) => client.errors.push(error.message));
    socket.on('disconnect', (reason, details) => {
      if (!running) return;
      client.errors.push(reason);
      // The WebSocket's CloseEvent, when the transport closed (the reason 'transport close').
      const code = (details as { context?: { code?: number } } | undefined)?.context?.code;
      lost(client, code ?? 0);
    });
    return socket;
  });
  return fleet(clients, async () => {
    running = false;
    for (const socket of sockets) socket.disconnect();
  });
}
