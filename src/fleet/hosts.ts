/**
 * A fleet's host list, as --hosts writes it: comma-separated `host:port`
 * (`[::1]:3000` for IPv6) and `dns:NAME:PORT` entries, the latter standing
 * for every address NAME resolves to (a Kubernetes headless Service gives one
 * per ready pod). Resolved once, before anything is touched.
 */
import dns from 'node:dns';
import net from 'node:net';
import { hostPort } from '../common/address.js';
import { SettingError } from '../common/errors.js';

export interface FleetHost {
  /** What the fleet's output calls it, and what a client dials: "10.0.0.5:3000", "[::1]:3000". */
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

type Entry = { kind: 'host'; address: string; port: number } | { kind: 'dns'; name: string; port: number };

/** Looks NAME up: every address, as the system resolver answers (/etc/hosts, DNS). */
export type Lookup = (name: string) => Promise<string[]>;

const systemLookup: Lookup = async (name) => (await dns.promises.lookup(name, { all: true })).map((a) => a.address);

/** RFC 6761 §6.3: `localhost` names the loopback addresses, whatever a hosts file says (as curl and browsers treat it). */
const LOOPBACK = ['127.0.0.1', '::1'];

function parsePort(text: string, entry: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) throw new SettingError(`--hosts: "${entry}" needs a port from 1 to 65535`);
  return port;
}

export function parseHostList(list: string | readonly string[]): Entry[] {
  const entries = (typeof list === 'string' ? list.split(',') : list).map((e) => e.trim());
  if (entries.length === 0 || entries.every((e) => e === '')) throw new SettingError('--hosts needs at least one host:port or dns:NAME:PORT');
  return entries.map((entry) => {
    if (entry === '') throw new SettingError('--hosts has an empty entry (two commas in a row, or one at an end)');
    const dnsEntry = /^dns:([^:]+):(\d*)$/.exec(entry);
    if (dnsEntry) return { kind: 'dns', name: dnsEntry[1]!, port: parsePort(dnsEntry[2]!, entry) };
    if (entry.startsWith('dns:')) throw new SettingError(`--hosts: "${entry}" must be dns:NAME:PORT`);
    const hostEntry = /^(\[[^\]]+\]|[^:[\]]+):(\d*)$/.exec(entry);
    if (!hostEntry) throw new SettingError(`--hosts: "${entry}" must be host:port ([addr]:port for IPv6) or dns:NAME:PORT`);
    const address = hostEntry[1]!.replace(/^\[(.*)\]$/, '$1');
    if (hostEntry[1]!.startsWith('[') && net.isIPv6(address) === false) throw new SettingError(`--hosts: "${entry}" has no IPv6 address in its brackets`);
    return { kind: 'host', address, port: parsePort(hostEntry[2]!, entry) };
  });
}

/** The hosts a list names, in its order (the first is the canary); a dns: entry's addresses sorted, duplicates dropped. */
export async function resolveHosts(list: string | readonly string[], lookup: Lookup = systemLookup): Promise<FleetHost[]> {
  const hosts = new Map<string, FleetHost>();
  const add = (address: string, port: number) => {
    const name = hostPort(address, port);
    if (!hosts.has(name)) hosts.set(name, { name, address, port });
  };
  for (const entry of parseHostList(list)) {
    if (entry.kind === 'host') {
      add(entry.address, entry.port);
      continue;
    }
    let addresses: string[];
    if (entry.name === 'localhost') addresses = LOOPBACK;
    else {
      try {
        addresses = await lookup(entry.name);
      } catch (error) {
        throw new SettingError(`--hosts: cannot resolve ${entry.name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    }
    if (addresses.length === 0) throw new SettingError(`--hosts: ${entry.name} resolves to no address`);
    for (const address of [...new Set(addresses)].sort()) add(address, entry.port);
  }
  return [...hosts.values()];
}
