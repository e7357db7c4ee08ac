/**
 * The typed client: the generated stubs, with promises, typed errors and
 * watch() as an async iterator. The CLI is built on it; so can your tools be.
 */
import fs from 'node:fs';
import {
  LiveswapServiceDefinition,
  type BroadcastResponse,
  type DieResponse,
  type GetStatusResponse,
  type KillResponse,
  type StartResponse,
  type UpgradeResponse,
  type DieRequest,
  type StartRequest,
  type UpgradeRequest,
  type UpgradeMasterRequest,
  type UpgradeMasterResponse,
  type WatchWorkersResponse,
} from '../gen/liveswap/v1/liveswap.js';
import { LiveswapClientError, wrapClientError } from './errors.js';
import { CallError, Transport, type MethodDefinition, type TransportTls } from './transport.js';
import { Status as status } from '../common/status.js';
import { checkTokenTransport, controlEndpoint, describeEndpoint, type ControlEndpoint } from '../common/endpoint.js';
import { LiveswapError } from '../common/errors.js';
import { isJsonValue } from '../common/json.js';
import { readTokenFile, TOKEN_ENV, tokenFilePath } from '../common/token-file.js';

export { LiveswapClientError } from './errors.js';
export * from '../gen/liveswap/v1/liveswap.js';

export interface ConnectOptions {
  /** Control address (default DEFAULTS.address, 127.0.0.1). */
  address?: string;
  /** Control port (default DEFAULTS.port, 3000). */
  port?: number;
  /** A unix socket path; overrides address and port. */
  socket?: string;
  /** Milliseconds each call may take; no limit by default (an upgrade may take as long as its drains). */
  deadlineMs?: number;
  /**
   * The master's token (TCP only). Default: $LIVESWAP_TOKEN, else the token
   * file the master wrote for this address and port in the state directory.
   */
  token?: string;
  /** The state directory to find the token file in (default: $LIVESWAP_STATE_DIR, $XDG_RUNTIME_DIR/liveswap, ~/.liveswap). */
  stateDir?: string;
  /** TLS: true to use the system's trusted roots, or the files (paths, or PEM contents as Buffers). */
  tls?: boolean | TlsClientOptions;
  /**
   * Send the token in clear text to an address that is not loopback (no TLS).
   * Without it connect() refuses: anyone on the path could read and replay it.
   */
  insecure?: boolean;
}

export interface TlsClientOptions {
  /** CA certificate(s) to trust instead of the system's roots. */
  ca?: string | Buffer;
  /** Client certificate and key, for a master that requires them (mTLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to check the master's certificate against, when it differs from the address. */
  serverName?: string;
}

export interface LiveswapClient {
  /** Where this client connects, e.g. "127.0.0.1:3000" or "unix:/run/app.sock". */
  readonly endpoint: string;
  start(request: Partial<StartRequest> & { target: string }): Promise<StartResponse>;
  upgrade(request: Partial<UpgradeRequest> & { target: string }): Promise<UpgradeResponse>;
  kill(): Promise<KillResponse>;
  /** Replace the master process itself, sockets kept (see docs/self-upgrade.md). */
  upgradeMaster(request?: Partial<UpgradeMasterRequest>): Promise<UpgradeMasterResponse>;
  die(request?: Partial<DieRequest>): Promise<DieResponse>;
  broadcast(message: unknown): Promise<BroadcastResponse>;
  status(): Promise<GetStatusResponse>;
  /**
   * The WatchWorkers stream: a snapshot, then one item per transition. Break
   * out of the loop (or abort) to stop. When --upgrade-master replaces the
   * master, it fails with a LiveswapClientError whose `masterReplaced` is
   * set; with `followMaster: true` it goes on with the successor's stream
   * instead (a new snapshot first, whose sequence numbers are the
   * successor's own) and calls `onMasterReplaced`.
   */
  watch(options?: WatchOptions): AsyncGenerator<WatchWorkersResponse, void, undefined>;
  close(): void;
}

export interface WatchOptions {
  signal?: AbortSignal;
  /** Go on with the successor when the master is replaced (default false). */
  followMaster?: boolean;
  onMasterReplaced?: () => void;
}

export function endpointOf(options: ConnectOptions): string {
  return describeEndpoint(controlEndpoint(options));
}

function pem(what: string, value: string | Buffer | undefined): Buffer | null {
  if (value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  try {
    return fs.readFileSync(value);
  } catch (error) {
    throw new LiveswapClientError(
      status.INVALID_ARGUMENT,
      `cannot read the TLS ${what} ${value}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** The TLS settings the transport needs, files read; undefined for plain text and unix sockets. */
function tlsOf(options: ConnectOptions): TransportTls | undefined {
  if (!options.tls || options.socket) return undefined;
  const tls = options.tls === true ? {} : options.tls;
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new LiveswapClientError(status.INVALID_ARGUMENT, 'a TLS client certificate needs its key, and a key its certificate');
  }
  return { ca: pem('CA', tls.ca), key: pem('key', tls.key), cert: pem('certificate', tls.cert), ...(tls.serverName && { serverName: tls.serverName }) };
}

/** A LiveswapError from the settings or the token file, as the client's own error type. */
function asClientError(error: unknown): unknown {
  return error instanceof LiveswapError ? new LiveswapClientError(error.code, error.message) : error;
}

/** Where the token comes from, read again at every call (a restarted master has a new one). */
function tokenSource(where: ControlEndpoint, options: ConnectOptions): () => { token?: string; from: string } {
  if ('socket' in where) return () => ({ from: 'a unix socket needs no token' });
  if (options.token) return () => ({ token: options.token, from: 'sent the token given to the client' });
  const fromEnv = process.env[TOKEN_ENV];
  if (fromEnv) return () => ({ token: fromEnv, from: `sent the token in ${TOKEN_ENV}` });
  const file = tokenFilePath(where.address, where.port, options.stateDir);
  return () => {
    const token = readTokenFile(file);
    return token
      ? { token, from: `sent the token from ${file}` }
      : { from: `no --token, no ${TOKEN_ENV} and no token file ${file}; on another machine or state directory, pass the master's token` };
  };
}

export function connect(options: ConnectOptions = {}): LiveswapClient {
  const where = controlEndpoint(options);
  const endpoint = describeEndpoint(where);
  try {
    checkTokenTransport(where, { tls: Boolean(options.tls), insecure: options.insecure });
  } catch (error) {
    throw asClientError(error);
  }
  const transport = new Transport(where, LiveswapServiceDefinition.fullName, tlsOf(options));
  const methods = LiveswapServiceDefinition.methods;
  const token = tokenSource(where, options);
  /** The call's headers, and where its token came from (for an UNAUTHENTICATED reply). */
  const credentials = (): { headers: Record<string, string>; from: string } => {
    const source = token();
    return { headers: source.token ? { authorization: `Bearer ${source.token}` } : {}, from: source.from };
  };
  const wrap = (error: unknown, from: string): unknown => {
    if (!(error instanceof CallError)) return error;
    const wrapped = wrapClientError(error, endpoint, { tls: Boolean(options.tls) });
    if (wrapped.code !== status.UNAUTHENTICATED) return wrapped;
    return new LiveswapClientError(wrapped.code, `${wrapped.message} (client: ${from})`, wrapped.stderrTail);
  };

  function call<Req, Res>(method: MethodDefinition<Req, Res>, request: Req): Promise<Res> {
    let headers: Record<string, string>;
    let from: string;
    try {
      ({ headers, from } = credentials());
    } catch (error) {
      // A token file refused (a link, a FIFO, another user's): the call fails, it does not throw.
      return Promise.reject(asClientError(error));
    }
    return transport.unary(method, request, { headers, ...(options.deadlineMs && { deadlineMs: options.deadlineMs }) }).catch((error: unknown) => {
      throw wrap(error, from);
    });
  }

  return {
    endpoint,
    // A missing target goes out as "" (the master says it is required), never as the string "undefined".
    start: (request) => call(methods.start, { forks: 0, readyMode: 0, readyTimeoutMs: 0, ...request, target: request.target ?? '' }),
    upgrade: (request) =>
      call(methods.upgrade, { readyMode: 0, readyTimeoutMs: 0, drainTimeoutMs: 0, node: '', ...request, target: request.target ?? '' }),
    kill: () => call(methods.kill, {}),
    upgradeMaster: (request = {}) => call(methods.upgradeMaster, { node: '', readyTimeoutMs: 0, drainTimeoutMs: 0, ...request }),
    die: (request = {}) => call(methods.die, { force: false, drainTimeoutMs: 0, ...request }),
    broadcast: (message) =>
      isJsonValue(message)
        ? call(methods.broadcast, { message })
        : Promise.reject(
            new LiveswapClientError(
              status.INVALID_ARGUMENT,
              'the message must be a JSON value: a string, number, boolean, null, array or object',
            ),
          ),
    status: () => call(methods.getStatus, {}),
    async *watch({ signal, followMaster = false, onMasterReplaced } = {}) {
      for (;;) {
        let credential: ReturnType<typeof credentials>;
        try {
          credential = credentials();
        } catch (error) {
          throw asClientError(error);
        }
        const { headers, from } = credential;
        // No deadline: a watch lasts as long as it is read. Ended by us (abort, or the reader leaving): no error.
        try {
          yield* transport.serverStream(methods.watchWorkers, {}, { headers, ...(signal && { signal }) });
          return;
        } catch (error) {
          if (signal?.aborted) return;
          const wrapped = wrap(error, from);
          if (!(followMaster && wrapped instanceof LiveswapClientError && wrapped.masterReplaced)) throw wrapped;
          // The old master sent GOAWAY with it: the next call opens a connection, which the successor accepts.
          onMasterReplaced?.();
        }
      }
    },
    close: () => transport.close(),
  };
}
