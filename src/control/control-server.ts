/**
 * Binds the gRPC control service: TCP (address:port, port 0 picks a free one)
 * or a unix socket created with mode 0600, so only the master's user can
 * drive it. A socket file nobody listens on (connecting is refused), as a
 * killed master leaves, is removed; anything else there is refused. At close
 * the socket is removed only if it is still the one this master bound.
 *
 * Only literal addresses are bound, never a name: `localhost` means both
 * 127.0.0.1 and ::1, and start-up fails unless both bind (or this machine has
 * no ::1), so nobody can take the other half first and collect the token of
 * clients that resolve `localhost` to it.
 *
 * Over TCP every Liveswap call needs the master's token (auth.ts), written to
 * a 0600 file in the state directory (token-file.ts) once the port is bound,
 * and removed at close; the read-only token goes to a file of its own. TLS
 * (and mTLS with a CA) is optional on loopback and required elsewhere unless
 * `insecure` is set. Health checking and server reflection are served next to
 * the Liveswap service, within the limits of limits.ts.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ensureStateDir, removeTokenFile, stateDir, tokenFilePaths, writeTokenFile } from '../common/token-file.js';
import { generateToken, tokenInterceptor, type Tokens } from './auth.js';
import { CONTROL_LIMITS, serverOptions, type ControlLimits } from './limits.js';
import { capConnections } from './connection-cap.js';
import { listenerHandleOf } from './listen.js';
import { RefusalLog } from './refusal-log.js';
import { bindFailureReason, invalidArgument, LiveswapError, Status } from '../common/errors.js';
import { hostPort } from '../common/address.js';
import type { Logger } from '../common/logger.js';
import type { Master } from '../supervisor/master.js';
import { checkControlSecurity, checkEndpoint, describeEndpoint, isLoopback, type ControlEndpoint, type ControlSecurity } from '../common/endpoint.js';
import { createService, LiveswapServiceService, type ServiceOptions } from './service.js';
import type { ListenHandle } from '../supervisor/listeners.js';

export interface ControlServer {
  /** Where clients connect: "127.0.0.1:3000", "[::1]:3000" or "unix:/path". */
  readonly target: string;
  /** The token file a client on the default loopback address reads (TCP only). */
  readonly tokenFile: string | undefined;
  /** Every token file written: one per loopback address that reaches the master (see token-file.ts). */
  readonly tokenFiles: readonly string[];
  /** The TCP tokens (undefined on a unix socket): a successor master keeps them. */
  readonly tokens: Tokens | undefined;
  /** The listening socket's handle, for a successor master to inherit; undefined if it cannot be found. */
  listenerHandle(): ListenHandle | undefined;
  /**
   * Close for a successor that already accepts on the same listener: the
   * socket file and the token files stay (they are the successor's now), and
   * WatchWorkers clients are told to reconnect.
   */
  handOver(): void;
  /** The read-only token's files, one per token file. */
  readonly readOnlyTokenFiles: readonly string[];
  close(): Promise<void>;
}

/** Where a successor master's control listener comes from: the old master's, inherited. */
export interface InheritedControl {
  fd: number;
  tokens: Tokens | undefined;
}

function readPem(what: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw invalidArgument(`cannot read the TLS ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function prepareStateDir(explicit: string | undefined): void {
  try {
    ensureStateDir(stateDir(explicit));
  } catch (error) {
    throw invalidArgument(`cannot use the state directory for the control token: ${(error as Error).message}`);
  }
}

/** Reads the PEM files (before binding, so a missing one stops start-up with one line). */
export function serverCredentials(security: ControlSecurity = {}): ServerCredentials {
  if (!security.tls) return ServerCredentials.createInsecure();
  const { cert, key, ca } = security.tls;
  const keyPair = { cert_chain: readPem('certificate', cert), private_key: readPem('key', key) };
  try {
    return ServerCredentials.createSsl(ca ? readPem('CA', ca) : null, [keyPair], Boolean(ca));
  } catch (error) {
    throw invalidArgument(`unusable TLS settings: ${(error as Error).message}`);
  }
}

const SHUTDOWN_GRACE_MS = 2000;
/** sun_path holds 108 bytes on Linux, 104 on macOS, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/**
 * Connects to the unix socket: 'stale' if the connection is refused (nobody
 * listens: a killed master's leftover), 'live' if it is accepted, and for any
 * other error (EACCES: another user's socket; EAGAIN: a live master too busy
 * to accept) the error code: neither proves the socket dead.
 */
function probeSocket(socketPath: string): Promise<'live' | 'stale' | string> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve('live');
    });
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? 'stale' : (error.code ?? error.message)));
  });
}

async function prepareSocket(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return; // Nothing there.
  }
  if (!stat.isSocket()) {
    throw invalidArgument(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  const probe = await probeSocket(socketPath);
  if (probe === 'live') {
    throw new LiveswapError(Status.ALREADY_EXISTS, `another process is listening on ${socketPath} (is a liveswap master running?)`);
  }
  if (probe !== 'stale') {
    throw new LiveswapError(
      Status.ALREADY_EXISTS,
      `${socketPath} exists and connecting to it failed with ${probe}, not "connection refused": it may be live; remove it yourself if it is not`,
    );
  }
  fs.unlinkSync(socketPath);
}

/**
 * Binds the control socket with mode 0600 from the first moment anyone else
 * could reach it, without touching the umask: that is process-wide, so a
 * file the host app creates or a child it spawns meanwhile would get it. The
 * socket is bound inside a fresh private directory next to the requested
 * path (mkdtemp makes it 0700: nobody else can reach what is inside), made
 * 0600, then hard-linked into place, which fails rather than replace
 * anything that appeared there since prepareSocket looked. The private
 * directory is short-named (12 bytes under the parent, like a 12-character
 * socket name) because a unix socket path is limited to 107 bytes.
 */
async function bindPrivately(server: Server, socketPath: string, credentials: ServerCredentials): Promise<fs.Stats> {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw invalidArgument(
      `socket path ${socketPath} is ${Buffer.byteLength(socketPath)} bytes long; a unix socket path may have at most ${MAX_SOCKET_PATH_BYTES}`,
    );
  }
  let privateDir: string;
  try {
    privateDir = fs.mkdtempSync(path.join(path.dirname(socketPath), '.ls-'));
  } catch (error) {
    throw explainBindError(`unix:${socketPath}`, error as Error);
  }
  const inside = path.join(privateDir, 's');
  try {
    try {
      await bind(server, `unix:${inside}`, credentials);
    } catch (error) {
      throw explainBindError(`unix:${socketPath}`, error as Error);
    }
    fs.chmodSync(inside, 0o600);
    try {
      fs.linkSync(inside, socketPath);
    } catch (error) {
      server.forceShutdown();
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new LiveswapError(Status.ALREADY_EXISTS, `another process created ${socketPath} while this master was binding it`);
      }
      throw explainBindError(`unix:${socketPath}`, error as Error);
    }
    return fs.lstatSync(inside); // The same inode as the link at socketPath.
  } finally {
    fs.rmSync(privateDir, { recursive: true, force: true });
  }
}

/** Removes the socket at `socketPath` if it is still the one bound (`bound`), not one a later master put there. */
function removeOwnSocket(socketPath: string, bound: fs.Stats | undefined): void {
  const now = fs.lstatSync(socketPath, { throwIfNoEntry: false });
  if (bound && now && now.dev === bound.dev && now.ino === bound.ino) fs.rmSync(socketPath, { force: true });
}

/**
 * Binds `address`:`port`, a literal address; `localhost` is 127.0.0.1 and ::1
 * on the same port, both or nothing. A machine without ::1 (EADDRNOTAVAIL)
 * needs only 127.0.0.1: nobody else can bind what does not exist. Returns the
 * port and the addresses bound.
 */
async function bindTcp(server: Server, address: string, port: number, credentials: ServerCredentials): Promise<{ port: number; bound: string[] }> {
  const literal = address === 'localhost' ? '127.0.0.1' : address;
  let bound: number;
  try {
    bound = await bind(server, hostPort(literal, port), credentials);
  } catch (error) {
    throw explainBindError(hostPort(address, port), error as Error);
  }
  if (address !== 'localhost') return { port: bound, bound: [literal] };
  try {
    await bind(server, hostPort('::1', bound), credentials);
    return { port: bound, bound: ['127.0.0.1', '::1'] };
  } catch (error) {
    if (/EADDRNOTAVAIL/.test((error as Error).message)) return { port: bound, bound: ['127.0.0.1'] };
    server.forceShutdown();
    const why = bindFailureReason(error as Error);
    throw new LiveswapError(
      Status.UNAVAILABLE,
      `cannot listen on localhost:${bound}: 127.0.0.1 bound but [::1]:${bound} did not (${why}); another process holding it would receive the token of every client that resolves localhost to ::1. Free it, or use -a 127.0.0.1`,
    );
  }
}

/** The servers grpc-js bound for `server` (two for localhost), from its private map: it has no public way to reach them. */
function grpcListeners(server: Server): net.Server[] {
  const bound = (server as unknown as { http2Servers?: Map<net.Server, unknown> }).http2Servers;
  return bound ? [...bound.keys()] : [];
}

function bind(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => (error ? reject(error) : resolve(port)));
  });
}

function explainBindError(where: string, error: Error): LiveswapError {
  let why = bindFailureReason(error);
  if (/EADDRINUSE/.test(error.message)) why += ' (is another liveswap master running?)';
  return new LiveswapError(Status.UNAVAILABLE, `cannot listen on ${where}: ${why}`);
}

export interface ControlServerOptions extends ServiceOptions {
  /** @internal the limits of limits.ts, for tests that cannot wait minutes for an idle connection to close. */
  limits?: Partial<ControlLimits>;
}

/** Writes `token` to each file; on failure removes those written and throws. */
function writeTokenFiles(files: readonly string[], token: string, written: string[]): void {
  for (const file of files) {
    try {
      writeTokenFile(file, token);
    } catch (error) {
      throw invalidArgument(`cannot write the control token to ${file}: ${(error as Error).message}`);
    }
    written.push(file);
  }
}

export async function startControlServer(
  master: Master,
  endpoint: ControlEndpoint,
  log: Logger,
  security: ControlSecurity = {},
  options: ControlServerOptions = {},
  inheritedControl?: InheritedControl,
): Promise<ControlServer> {
  checkEndpoint(endpoint);
  checkControlSecurity(endpoint, security);
  const credentials = serverCredentials(security);
  if (!('socket' in endpoint)) prepareStateDir(security.stateDir); // A bad one fails before binding.
  const limits = { ...CONTROL_LIMITS, ...options.limits };
  const tokens: Tokens | undefined = 'socket' in endpoint ? undefined : (inheritedControl?.tokens ?? { full: security.token ?? generateToken(), readOnly: generateToken() });
  const refusals = new RefusalLog(log);
  const server = new Server({
    ...serverOptions(limits),
    ...(tokens && { interceptors: [tokenInterceptor(tokens, refusals)] }),
  });
  const service = createService(master, log, options);
  server.addService(LiveswapServiceService, service.implementation);
  // Loaded here, not at import: the CLI's client commands never pay for them.
  const [{ addHealthService }, { addReflectionService }] = await Promise.all([import('./health.js'), import('./reflection.js')]);
  const health = addHealthService(server, master, limits.maxHealthWatches);
  addReflectionService(server, log);

  let target: string;
  let boundSocket: fs.Stats | undefined;
  const tokenFiles: string[] = [];
  // A successor's listener: the old master's socket, inherited. grpc-js serves
  // the connections we accept on it (createConnectionInjector); nothing is
  // bound again, so clients are never refused while masters change.
  let ownListener: net.Server | undefined;
  const readOnlyTokenFiles: string[] = [];
  let also = '';
  try {
    if (inheritedControl) {
      const injector = server.createConnectionInjector(credentials);
      ownListener = net.createServer((socket) => injector.injectConnection(socket));
      const listener = ownListener;
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen({ fd: inheritedControl.fd }, () => resolve());
      });
      if ('socket' in endpoint) target = `unix:${path.resolve(endpoint.socket)}`;
      else {
        const port = (listener.address() as net.AddressInfo).port;
        target = describeEndpoint({ address: endpoint.address, port });
        // The same tokens in the same files: rewritten (atomically) so they are this master's to remove.
        writeTokenFiles(tokenFilePaths(endpoint.address, port, security.stateDir), tokens!.full, tokenFiles);
        writeTokenFiles(tokenFilePaths(endpoint.address, port, security.stateDir, 'read-only'), tokens!.readOnly, readOnlyTokenFiles);
      }
    } else if ('socket' in endpoint) {
      const socketPath = path.resolve(endpoint.socket);
      await prepareSocket(socketPath);
      target = `unix:${socketPath}`;
      boundSocket = await bindPrivately(server, socketPath, credentials);
    } else {
      const { port, bound } = await bindTcp(server, endpoint.address, endpoint.port, credentials);
      // The literal address bound, so a client dials exactly that, not a name.
      target = describeEndpoint({ address: bound[0]!, port });
      if (bound.length > 1) also = `, also on ${bound.slice(1).map((address) => hostPort(address, port)).join(', ')}`;
      try {
        writeTokenFiles(tokenFilePaths(endpoint.address, port, security.stateDir), tokens!.full, tokenFiles);
        writeTokenFiles(tokenFilePaths(endpoint.address, port, security.stateDir, 'read-only'), tokens!.readOnly, readOnlyTokenFiles);
      } catch (error) {
        for (const written of tokenFiles) removeTokenFile(written, tokens!.full);
        for (const written of readOnlyTokenFiles) removeTokenFile(written, tokens!.readOnly);
        server.forceShutdown();
        throw error;
      }
    }
  } catch (error) {
    health.stop();
    throw error;
  }
  const listeners = ownListener ? [ownListener] : grpcListeners(server);
  // grpc-js has no option for it: a grpc-js that keeps its servers elsewhere fails test/security-connections.
  if (listeners.length === 0) log.warn('cannot cap the control port\'s connections: grpc-js keeps its servers somewhere this liveswap does not know');
  for (const listener of listeners) capConnections(listener, limits.maxConnections, 'control port', refusals);
  const protection =
    'socket' in endpoint
      ? 'unix socket mode 0600'
      : `${security.tls ? (security.tls.ca ? 'mTLS' : 'TLS') : 'no TLS'}, token in ${tokenFiles.join(' and ')}; read-only token in ${readOnlyTokenFiles.join(' and ')}`;
  log.info(`control service listening on ${target} (${protection}${also})`);
  if (!('socket' in endpoint) && !security.tls && !isLoopback(endpoint.address)) {
    log.warn(`insecure: control on ${target} has no TLS; the token and every call cross the network in clear text`);
  }

  let closing: Promise<void> | undefined;
  let handedOver = false;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      health.stop();
      refusals.close();
      if (!handedOver) {
        for (const file of tokenFiles) removeTokenFile(file, tokens!.full);
        for (const file of readOnlyTokenFiles) removeTokenFile(file, tokens!.readOnly);
      }
      service.endStreams();
      ownListener?.close();
      const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(force);
        if ('socket' in endpoint && !handedOver) removeOwnSocket(path.resolve(endpoint.socket), boundSocket);
        resolve();
      });
    });
    return closing;
  };
  return {
    target,
    tokenFile: tokenFiles[0],
    tokenFiles,
    tokens,
    readOnlyTokenFiles,
    listenerHandle() {
      const listening = ownListener ?? grpcListeners(server).find((s) => s.listening);
      return listening && listenerHandleOf(listening);
    },
    handOver() {
      handedOver = true;
      service.endStreams('the master was replaced (upgrade-master); reconnect to reach its successor');
      // Stop accepting, and send every open connection GOAWAY: the calls on it
      // finish (the UpgradeMaster call itself among them), the next ones
      // reconnect and reach the successor. The socket and token files stay.
      void close();
    },
    close,
  };
}
