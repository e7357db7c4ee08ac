/**
 * The typed client: the generated stubs, with promises, typed errors and
 * watch() as an async iterator. The CLI is built on it; so can your tools be.
 */
import { credentials, Metadata, status, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import {
  LiveswapServiceClient,
  type BroadcastResponse,
  type DieResponse,
  type GetStatusResponse,
  type KillResponse,
  type StartResponse,
  type UpgradeResponse,
  type DieRequest,
  type StartRequest,
  type UpgradeRequest,
  type WatchWorkersResponse,
} from '../gen/liveswap/v1/liveswap.js';
import { LiveswapClientError, wrapClientError } from './errors.js';
import { isJsonValue } from '../json.js';

export { LiveswapClientError } from './errors.js';
export * from '../gen/liveswap/v1/liveswap.js';

export interface ConnectOptions {
  /** Control address (default 127.0.0.1). */
  address?: string;
  /** Control port (default 3000). */
  port?: number;
  /** A unix socket path; overrides address and port. */
  socket?: string;
  /** Milliseconds each call may take; no limit by default (an upgrade may take as long as its drains). */
  deadlineMs?: number;
}

export interface LiveswapClient {
  /** Where this client connects, e.g. "127.0.0.1:3000" or "unix:/run/app.sock". */
  readonly endpoint: string;
  start(request: Partial<StartRequest> & { target: string }): Promise<StartResponse>;
  upgrade(request: Partial<UpgradeRequest> & { target: string }): Promise<UpgradeResponse>;
  kill(): Promise<KillResponse>;
  die(request?: Partial<DieRequest>): Promise<DieResponse>;
  broadcast(message: unknown): Promise<BroadcastResponse>;
  status(): Promise<GetStatusResponse>;
  /** The WatchWorkers stream: a snapshot, then one item per transition. Break out of the loop (or abort) to stop. */
  watch(options?: { signal?: AbortSignal }): AsyncGenerator<WatchWorkersResponse, void, undefined>;
  close(): void;
}

export function endpointOf(options: ConnectOptions): string {
  if (options.socket) return `unix:${options.socket}`;
  const address = options.address ?? '127.0.0.1';
  const host = address.includes(':') ? `[${address}]` : address;
  return `${host}:${options.port ?? 3000}`;
}

export function connect(options: ConnectOptions = {}): LiveswapClient {
  const endpoint = endpointOf(options);
  const stub = new LiveswapServiceClient(endpoint, credentials.createInsecure());
  const callOptions = (): CallOptions =>
    options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {};

  function call<Req, Res>(
    method: (req: Req, md: Metadata, opts: CallOptions, cb: (e: ServiceError | null, r: Res) => void) => unknown,
    request: Req,
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(stub, request, new Metadata(), callOptions(), (error, response) =>
        error ? reject(wrapClientError(error, endpoint)) : resolve(response),
      );
    });
  }

  return {
    endpoint,
    // A missing target goes out as "" (the master says it is required), never as the string "undefined".
    start: (request) => call(stub.start, { forks: 0, readyMode: 0, readyTimeoutMs: 0, ...request, target: request.target ?? '' }),
    upgrade: (request) =>
      call(stub.upgrade, { readyMode: 0, readyTimeoutMs: 0, drainTimeoutMs: 0, ...request, target: request.target ?? '' }),
    kill: () => call(stub.kill, {}),
    die: (request = {}) => call(stub.die, { force: false, drainTimeoutMs: 0, ...request }),
    broadcast: (message) =>
      isJsonValue(message)
        ? call(stub.broadcast, { message })
        : Promise.reject(
            new LiveswapClientError(
              status.INVALID_ARGUMENT,
              'the message must be a JSON value: a string, number, boolean, null, array or object',
            ),
          ),
    status: () => call(stub.getStatus, {}),
    async *watch({ signal } = {}) {
      const stream = stub.watchWorkers({});
      let cancelledByUs = false;
      const cancel = () => {
        cancelledByUs = true;
        stream.cancel();
      };
      // After a cancel grpc-js emits an error; keep it from becoming an uncaught exception.
      stream.on('error', () => {});
      signal?.addEventListener('abort', cancel, { once: true });
      try {
        for await (const item of stream as AsyncIterable<WatchWorkersResponse>) yield item;
      } catch (error) {
        if (!cancelledByUs) throw wrapClientError(error as ServiceError, endpoint);
      } finally {
        signal?.removeEventListener('abort', cancel);
        if (!cancelledByUs) {
          cancelledByUs = true;
          stream.cancel();
        }
      }
    },
    close: () => stub.close(),
  };
}
