/**
 * Where the control service listens and how it is protected: the shapes and
 * checks that the master, the CLI and the API share, with no server code.
 */
import net from 'node:net';
import { bare, hostPort } from './address.js';
import { DEFAULTS } from './defaults.js';
import { invalidArgument, optionName, SettingError, type Spell } from './errors.js';

export type ControlEndpoint = { socket: string } | { address: string; port: number };

/** How the TCP control service is protected (a unix socket relies on its file mode alone). */
export interface ControlSecurity {
  /** PEM files: the server's certificate chain and key; with `ca`, clients must present a certificate it signed (mTLS). */
  tls?: { cert: string; key: string; ca?: string };
  /** Allow a non-loopback address without TLS (logged as a warning). */
  insecure?: boolean;
  /** Where the token file goes (default: see token-file.ts). */
  stateDir?: string;
  /** The full-access token (TCP); default: a new random one at each start. */
  token?: string;
}

/** A token given to a master: what generateToken makes (43 characters) or anything as long, of visible ASCII. */
export const MIN_GIVEN_TOKEN_LENGTH = 32;

/**
 * The control endpoint that options name, the API's and the CLI's alike: a
 * unix socket, or an address and port with the defaults filled in.
 */
export function controlEndpoint(options: { socket?: string | undefined; address?: string | undefined; port?: number | undefined }): ControlEndpoint {
  return options.socket
    ? { socket: options.socket }
    : { address: bare(options.address ?? DEFAULTS.address), port: options.port ?? DEFAULTS.port };
}

/**
 * The literal address a client dials for `address`: `localhost` is
 * 127.0.0.1, never a name to resolve. Resolved, it may come back as ::1
 * first (the stock hosts file of most distributions), where another local
 * user can listen and collect the token (docs/security.md).
 */
export function dialAddress(address: string): string {
  return address === 'localhost' ? '127.0.0.1' : address;
}

/** "127.0.0.1:3000", "[::1]:3000" or "unix:/path": what a gRPC client dials (a literal address, see dialAddress). */
export function describeEndpoint(endpoint: ControlEndpoint): string {
  return 'socket' in endpoint ? `unix:${endpoint.socket}` : hostPort(dialAddress(endpoint.address), endpoint.port);
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: reachable from this machine only. */
export function isLoopback(address: string): boolean {
  if (address === 'localhost' || address === '::1') return true;
  const v4 = address.replace(/^::ffff:/i, '');
  return net.isIPv4(v4) && v4.startsWith('127.');
}

export interface EndpointCheck {
  /** How the error names the setting (default: the API's option names). */
  spell?: Spell;
  /** A client dials a real port; a server may bind port 0 (any free one). */
  dial?: boolean;
}

/**
 * Throws a SettingError for a port or address that cannot be bound or dialled
 * as given; `names` are the settings that hold them (the control service's,
 * or the metrics endpoint's).
 */
export function checkHostPort(
  where: { address: string; port: number },
  { spell = optionName, dial = false }: EndpointCheck = {},
  names = { address: 'address', port: 'port' },
): void {
  const min = dial ? 1 : 0;
  if (!Number.isInteger(where.port) || where.port < min || where.port > 65535) {
    throw new SettingError(`${spell(names.port)} must be a whole number from ${min} to 65535, got ${where.port}`);
  }
  if (net.isIP(where.address) === 0 && where.address !== 'localhost') {
    throw new SettingError(`${spell(names.address)} must be an IP address (like 127.0.0.1 or ::1) or localhost, got "${where.address}"`);
  }
}

export function checkEndpoint(endpoint: ControlEndpoint, check: EndpointCheck = {}): void {
  if ('socket' in endpoint) {
    if (!endpoint.socket) throw new SettingError(`${(check.spell ?? optionName)('socket')} needs a path`);
    return;
  }
  checkHostPort(endpoint, check);
}

/**
 * Refuses, before anything binds, a control address other machines can reach
 * without TLS, unless `insecure` says so; and TLS settings on a unix socket.
 */
export function checkControlSecurity(endpoint: ControlEndpoint, security: ControlSecurity = {}, spell: Spell = optionName): void {
  if ('socket' in endpoint) {
    if (security.tls) throw invalidArgument('TLS applies to TCP control, not to a unix socket (its file mode protects it)');
    if (security.token !== undefined) throw invalidArgument(`${spell('token')} applies to TCP control, not to a unix socket (its file mode protects it)`);
    return;
  }
  if (security.token !== undefined && !(security.token.length >= MIN_GIVEN_TOKEN_LENGTH && /^[\x21-\x7e]+$/.test(security.token))) {
    // Said without the token itself, which may be a near miss of the real one.
    throw new SettingError(
      `the control token must be at least ${MIN_GIVEN_TOKEN_LENGTH} characters of visible ASCII (no spaces); ${spell('token')} gave ${security.token.length}: make one with \`openssl rand -base64 32\``,
    );
  }
  if (!security.tls && !security.insecure && !isLoopback(endpoint.address)) {
    throw new SettingError(
      `refusing to serve control on ${endpoint.address} without TLS: give ${spell('tls')}, or ${spell('insecure')} to accept clear text`,
    );
  }
}

/**
 * The client's side of checkControlSecurity: refuses to send the token in
 * clear text to an address other machines can reach, unless `insecure` says
 * so. Whoever answers there (or listens on the way) would get a token that
 * runs code as the master's user.
 */
export function checkTokenTransport(endpoint: ControlEndpoint, transport: { tls: boolean; insecure?: boolean | undefined }, spell: Spell = optionName): void {
  if ('socket' in endpoint || transport.tls || transport.insecure) return;
  // Dialling a wildcard reaches this machine's own loopback.
  if (isLoopback(endpoint.address) || ['0.0.0.0', '::'].includes(endpoint.address)) return;
  throw new SettingError(
    `refusing to send the control token in clear text to ${endpoint.address}: connect with TLS (${spell('clientTls')}), or give ${spell('insecure')} to accept clear text`,
  );
}
