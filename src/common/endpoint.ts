/**
 * Where the control service listens and how it is protected: the shapes and
 * checks that the master, the CLI and the API share, with no server code.
 */
import net from 'node:net';
import { invalidArgument } from './errors.js';

export type ControlEndpoint = { socket: string } | { address: string; port: number };

/** How the TCP control service is protected (a unix socket relies on its file mode alone). */
export interface ControlSecurity {
  /** PEM files: the server's certificate chain and key; with `ca`, clients must present a certificate it signed (mTLS). */
  tls?: { cert: string; key: string; ca?: string };
  /** Allow a non-loopback address without TLS (logged as a warning). */
  insecure?: boolean;
  /** Where the token file goes (default: see token-file.ts). */
  stateDir?: string;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: reachable from this machine only. */
export function isLoopback(address: string): boolean {
  if (address === 'localhost' || address === '::1') return true;
  const v4 = address.replace(/^::ffff:/i, '');
  return net.isIPv4(v4) && v4.startsWith('127.');
}

/**
 * Refuses, before anything binds, a control address other machines can reach
 * without TLS, unless `insecure` says so; and TLS settings on a unix socket.
 */
export function checkControlSecurity(endpoint: ControlEndpoint, security: ControlSecurity = {}): void {
  if ('socket' in endpoint) {
    if (security.tls) throw invalidArgument('TLS applies to TCP control, not to a unix socket (its file mode protects it)');
    return;
  }
  if (!security.tls && !security.insecure && !isLoopback(endpoint.address)) {
    throw invalidArgument(
      `refusing to serve control on ${endpoint.address} without TLS: give a certificate and key (--tls-cert, --tls-key), or --insecure to accept clear text`,
    );
  }
}

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
