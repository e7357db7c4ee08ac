/**
 * Where a master keeps the token of its TCP control service, so a client on
 * the same machine (same user) finds it with no flags.
 *
 * State directory, first that applies: the `stateDir` option (`--state-dir`),
 * `$LIVESWAP_STATE_DIR`, `$XDG_RUNTIME_DIR/liveswap`, `~/.liveswap`. It is
 * created with mode 0700. Files are named by the loopback address a client
 * on this machine dials, and the port: `127.0.0.1_3000.token` (`::1` becomes
 * `--1`), mode 0600, removed when the master stops cleanly. A master bound
 * to a wildcard or to `localhost` writes one per loopback address that
 * reaches it, so a client on the default address (or on the address the
 * master reported) finds the token whatever `-a` the master was given.
 * Shared by the master and every client.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const STATE_DIR_ENV = 'LIVESWAP_STATE_DIR';
export const TOKEN_ENV = 'LIVESWAP_TOKEN';

export function stateDir(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  const fromEnv = process.env[STATE_DIR_ENV];
  if (fromEnv) return path.resolve(fromEnv);
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime) return path.join(runtime, 'liveswap');
  return path.join(os.homedir(), '.liveswap');
}

/**
 * The address a client that dials `address` reaches, as its token file is
 * named: dialling a wildcard reaches this machine's loopback, `localhost` is
 * 127.0.0.1 first, and an IPv4-mapped IPv6 address is its IPv4 address.
 */
function dialledAddress(address: string): string {
  const bare = address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  if (bare === '0.0.0.0' || bare === 'localhost') return '127.0.0.1';
  if (bare === '::') return '::1';
  return bare;
}

/** Does an IPv6 socket bound to `::` take IPv4 connections too (Linux's net.ipv6.bindv6only = 0, the default)? */
function wildcardIsDualStack(): boolean {
  try {
    return fs.readFileSync('/proc/sys/net/ipv6/bindv6only', 'utf8').trim() === '0';
  } catch {
    return true; // No such setting: the usual default, dual stack.
  }
}

/** The addresses a client on this machine may dial to reach a master bound to `address`, as token files name them. */
function reachedAt(address: string): string[] {
  if (address === 'localhost') return ['127.0.0.1', '::1'];
  if (address === '::') return wildcardIsDualStack() ? ['::1', '127.0.0.1'] : ['::1'];
  return [dialledAddress(address)];
}

function tokenFileName(address: string, port: number): string {
  return `${address.replace(/:/g, '-')}_${port}.token`;
}

/** Where a client that dials `address`:`port` looks for the master's token. */
export function tokenFilePath(address: string, port: number, explicitStateDir?: string): string {
  return path.join(stateDir(explicitStateDir), tokenFileName(dialledAddress(address), port));
}

/** Where a master bound to `address`:`port` writes its token: one file per address a local client may dial to reach it. */
export function tokenFilePaths(address: string, port: number, explicitStateDir?: string): string[] {
  return reachedAt(address).map((reached) => path.join(stateDir(explicitStateDir), tokenFileName(reached, port)));
}

/** Creates the state directory (0700) if needed; refuses one other users could write to. */
export function ensureStateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = fs.statSync(dir);
  if (!stat.isDirectory()) throw new Error(`state directory ${dir} is not a directory`);
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
    throw new Error(`state directory ${dir} belongs to another user (uid ${stat.uid}); choose another with --state-dir`);
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new Error(
      `state directory ${dir} is writable by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 700 it or choose another with --state-dir`,
    );
  }
}

/** Writes the token with mode 0600 from the first byte (a temporary file renamed over the old one). */
export function writeTokenFile(file: string, token: string): void {
  ensureStateDir(path.dirname(file));
  const temporary = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(temporary, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    fs.writeSync(fd, `${token}\n`);
    fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, file);
}

/** The token in the file, or undefined if there is none. */
export function readTokenFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Removes the file if it still holds our token (a later master may have replaced it). */
export function removeTokenFile(file: string, token: string): void {
  if (readTokenFile(file) === token) fs.rmSync(file, { force: true });
}
