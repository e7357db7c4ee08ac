/**
 * How addresses are written, the one place: the worker runtime imports it
 * too, so it imports nothing.
 */

/** "127.0.0.1:3000", "[::1]:3000": an IPv6 address goes in brackets. */
export function hostPort(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** `[::1]` → `::1`: people copy addresses from URLs. */
export function bare(address: string): string {
  return address.replace(/^\[(.*)\]$/, '$1');
}
