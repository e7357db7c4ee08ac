/**
 * Binds the gRPC control service: TCP (address:port, port 0 picks a free one)
 * or a unix socket created with mode 0600, so only the master's user can
 * drive it. A stale socket file left by a killed master is removed; a live
 * one is refused.
 *
 * Over TCP every Liveswap call needs the master's token (auth.ts), written to
 * a 0600 file in the state directory (token-file.ts) once the port is bound,
 * and removed at close. TLS (and mTLS with a CA) is optional on loopback and
 * required elsewhere unless `insecure` is set. Health checking and server
 * reflection are served next to the Liveswap service.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ensureStateDir, removeTokenFile, stateDir, tokenFilePaths, writeTokenFile } from '../common/token-file.js';
import { generateToken, tokenInterceptor } from './auth.js';
import { bindFailureReason, invalidArgument, LiveswapError, Status } from '../common/errors.js';
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
  /** The TCP token (undefined on a unix socket): a successor master keeps it. */
  readonly token: string | undefined;
  /** The listening socket's handle, for a successor master to inherit; undefined if it cannot be found. */
  listenerHandle(): ListenHandle | undefined;
  /**
   * Close for a successor that already accepts on the same listener: the
   * socket file and the token files stay (they are the successor's now), and
   * WatchWorkers clients are told to reconnect.
   */
  handOver(): void;
  close(): Promise<void>;
}

/** Where a successor master's control listener comes from: the old master's, inherited. */
export interface InheritedControl {
  fd: number;
  token: string | undefined;
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

/** Is something accepting connections on this unix socket? */
function socketIsLive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
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
  if (await socketIsLive(socketPath)) {
    throw new LiveswapError(Status.ALREADY_EXISTS, `another process is listening on ${socketPath} (is a liveswap master running?)`);
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
async function bindPrivately(server: Server, socketPath: string, credentials: ServerCredentials): Promise<void> {
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
  } finally {
    fs.rmSync(privateDir, { recursive: true, force: true });
  }
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

export async function startControlServer(
  master: Master,
  endpoint: ControlEndpoint,
  log: Logger,
  security: ControlSecurity = {},
  options: ServiceOptions = {},
  inheritedControl?: InheritedControl,
): Promise<ControlServer> {
  checkEndpoint(endpoint);
  checkControlSecurity(endpoint, security);
  const credentials = serverCredentials(security);
  if (!('socket' in endpoint)) prepareStateDir(security.stateDir); // A bad one fails before binding.
  const token = 'socket' in endpoint ? undefined : (inheritedControl?.token ?? generateToken());
  const server = new Server(token ? { interceptors: [tokenInterceptor(token, log)] } : {});
  const service = createService(master, log, options);
  server.addService(LiveswapServiceService, service.implementation);
  // Loaded here, not at import: the CLI's client commands never pay for them.
  const [{ addHealthService }, { addReflectionService }] = await Promise.all([import('./health.js'), import('./reflection.js')]);
  const stopHealth = addHealthService(server, master);
  addReflectionService(server, log);

  let target: string;
  const tokenFiles: string[] = [];
  // A successor's listener: the old master's socket, inherited. grpc-js serves
  // the connections we accept on it (createConnectionInjector); nothing is
  // bound again, so clients are never refused while masters change.
  let ownListener: net.Server | undefined;
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
        // The same token in the same files: rewritten (atomically) so they are this master's to remove.
        for (const file of tokenFilePaths(endpoint.address, port, security.stateDir)) {
          writeTokenFile(file, token!);
          tokenFiles.push(file);
        }
      }
    } else if ('socket' in endpoint) {
      const socketPath = path.resolve(endpoint.socket);
      await prepareSocket(socketPath);
      target = `unix:${socketPath}`;
      await bindPrivately(server, socketPath, credentials);
    } else {
      const requested = describeEndpoint(endpoint);
      let port: number;
      try {
        port = await bind(server, requested, credentials);
      } catch (error) {
        throw explainBindError(requested, error as Error);
      }
      target = describeEndpoint({ address: endpoint.address, port });
      for (const file of tokenFilePaths(endpoint.address, port, security.stateDir)) {
        try {
          writeTokenFile(file, token!);
        } catch (error) {
          for (const written of tokenFiles) removeTokenFile(written, token!);
          server.forceShutdown();
          throw invalidArgument(`cannot write the control token to ${file}: ${(error as Error).message}`);
        }
        tokenFiles.push(file);
      }
    }
  } catch (error) {
    stopHealth();
    throw error;
  }
  const protection =
    'socket' in endpoint
      ? 'unix socket mode 0600'
      : `${security.tls ? (security.tls.ca ? 'mTLS' : 'TLS') : 'no TLS'}, token in ${tokenFiles.join(' and ')}`;
  log.info(`control service listening on ${target} (${protection})`);
  if (!('socket' in endpoint) && !security.tls && !isLoopback(endpoint.address)) {
    log.warn(`insecure: control on ${target} has no TLS; the token and every call cross the network in clear text`);
  }

  let closing: Promise<void> | undefined;
  let handedOver = false;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      stopHealth();
      if (!handedOver) for (const file of tokenFiles) removeTokenFile(file, token!);
      service.endStreams();
      ownListener?.close();
      const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(force);
        if ('socket' in endpoint && !handedOver) fs.rmSync(path.resolve(endpoint.socket), { force: true });
        resolve();
      });
    });
    return closing;
  };
  return {
    target,
    tokenFile: tokenFiles[0],
    tokenFiles,
    token,
    listenerHandle() {
      if (ownListener) return (ownListener as unknown as { _handle: ListenHandle | null })._handle ?? undefined;
      // grpc-js keeps the servers it bound in a private map; the listening one is ours.
      const bound = (server as unknown as { http2Servers?: Map<net.Server, unknown> }).http2Servers;
      const listening = bound && [...bound.keys()].find((s) => s.listening);
      return (listening as unknown as { _handle?: ListenHandle | null } | undefined)?._handle ?? undefined;
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
