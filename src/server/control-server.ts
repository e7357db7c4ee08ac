/**
 * Binds the gRPC control service: TCP (address:port, port 0 picks a free one)
 * or a unix socket created with mode 0600, so only the master's user can
 * drive it. A stale socket file left by a killed master is removed; a live
 * one is refused.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { invalidArgument, LiveswapError, Status } from './errors.js';
import type { Logger } from './logger.js';
import type { Master } from './master.js';
import { createService, LiveswapServiceService, type ServiceOptions } from './service.js';

export type ControlEndpoint = { socket: string } | { address: string; port: number };

export interface ControlServer {
  /** Where clients connect: "127.0.0.1:3000", "[::1]:3000" or "unix:/path". */
  readonly target: string;
  close(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 2000;

export function describeEndpoint(endpoint: ControlEndpoint): string {
  if ('socket' in endpoint) return `unix:${endpoint.socket}`;
  const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
  return `${host}:${endpoint.port}`;
}

export function checkEndpoint(endpoint: ControlEndpoint): void {
  if ('socket' in endpoint) {
    if (!endpoint.socket) throw invalidArgument('socket path is empty');
    return;
  }
  if (!Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 65535) {
    throw invalidArgument(`port must be a whole number from 0 to 65535, got ${endpoint.port}`);
  }
  if (net.isIP(endpoint.address) === 0 && endpoint.address !== 'localhost') {
    throw invalidArgument(`address must be an IP address (like 127.0.0.1 or ::1), got "${endpoint.address}"`);
  }
}

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

function bind(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
  });
}

function explainBindError(where: string, error: Error): LiveswapError {
  const text = error.message;
  const why = /EADDRINUSE/.test(text)
    ? 'address already in use (is another liveswap master running?)'
    : /EACCES/.test(text)
      ? 'permission denied'
      : /EADDRNOTAVAIL/.test(text)
        ? 'address not available on this machine'
        : text;
  return new LiveswapError(Status.UNAVAILABLE, `cannot listen on ${where}: ${why}`);
}

export async function startControlServer(
  master: Master,
  endpoint: ControlEndpoint,
  log: Logger,
  options: ServiceOptions = {},
): Promise<ControlServer> {
  checkEndpoint(endpoint);
  const server = new Server();
  const service = createService(master, log, options);
  server.addService(LiveswapServiceService, service.implementation);

  let target: string;
  if ('socket' in endpoint) {
    const socketPath = path.resolve(endpoint.socket);
    await prepareSocket(socketPath);
    target = `unix:${socketPath}`;
    // Created 0600 from the start: there is no moment a stranger could connect.
    const previousUmask = process.umask(0o177);
    try {
      await bind(server, target);
    } catch (error) {
      throw explainBindError(target, error as Error);
    } finally {
      process.umask(previousUmask);
    }
    fs.chmodSync(socketPath, 0o600);
  } else {
    const requested = describeEndpoint(endpoint);
    let port: number;
    try {
      port = await bind(server, requested);
    } catch (error) {
      throw explainBindError(requested, error as Error);
    }
    target = describeEndpoint({ address: endpoint.address, port });
  }
  log.info(`control service listening on ${target}`);

  let closing: Promise<void> | undefined;
  return {
    target,
    close() {
      closing ??= new Promise<void>((resolve) => {
        service.endStreams();
        const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          if ('socket' in endpoint) fs.rmSync(path.resolve(endpoint.socket), { force: true });
          resolve();
        });
      });
      return closing;
    },
  };
}
