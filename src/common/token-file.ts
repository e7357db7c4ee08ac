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
 * Next to each, `127.0.0.1_3000.read-only.token` holds the read-only token.
 *
 * Nothing here is trusted for being at the right path: the state directory
 * must be a real directory of ours on a path nobody else can change, and a
 * token file a regular 0600 file of ours, opened without following links or
 * blocking on a FIFO (see docs/security.md).
 * Shared by the master and every client.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LiveswapError, Status } from './errors.js';

export const STATE_DIR_ENV = 'LIVESWAP_STATE_DIR';
export const TOKEN_ENV = 'LIVESWAP_TOKEN';
/**
 * The token a master (-s) is given, e.g. from a Kubernetes Secret. Not
 * TOKEN_ENV, which clients read: a shell that exported a client's token
 * (perhaps another master's read-only one) must not make it a master's.
 */
export const MASTER_TOKEN_ENV = 'LIVESWAP_MASTER_TOKEN';

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

/**
 * The full token may call everything; the read-only one (for monitoring)
 * GetStatus and WatchWorkers only, and lives in its own file.
 */
export type TokenKind = 'full' | 'read-only';

function tokenFileName(address: string, port: number, kind: TokenKind): string {
  return `${address.replace(/:/g, '-')}_${port}${kind === 'read-only' ? '.read-only' : ''}.token`;
}

/** Where a client that dials `address`:`port` looks for the master's token. */
export function tokenFilePath(address: string, port: number, explicitStateDir?: string, kind: TokenKind = 'full'): string {
  return path.join(stateDir(explicitStateDir), tokenFileName(dialledAddress(address), port, kind));
}

/** Where a master bound to `address`:`port` writes its token: one file per address a local client may dial to reach it. */
export function tokenFilePaths(address: string, port: number, explicitStateDir?: string, kind: TokenKind = 'full'): string[] {
  return reachedAt(address).map((reached) => path.join(stateDir(explicitStateDir), tokenFileName(reached, port, kind)));
}

/** Root, or the user this process runs as: the only owners a path we trust may have. */
function trustedOwner(uid: number): boolean {
  return typeof process.getuid !== 'function' || uid === 0 || uid === process.getuid();
}

/**
 * Every directory on the way to `dir` (and, if the way passes through
 * symbolic links, on the real way too) must belong to root or to us, and be
 * writable by nobody else unless it is sticky (/tmp): otherwise another user
 * could rename a directory on the way and put their own in its place after
 * we checked. A link on the way must belong to root or to us as well.
 */
function checkAncestors(dir: string): void {
  const check = (absolute: string) => {
    const parts = absolute.split(path.sep).filter(Boolean);
    for (let i = 0; i <= parts.length - 1; i++) {
      const at = path.sep + parts.slice(0, i).join(path.sep);
      const stat = fs.lstatSync(at);
      if (!trustedOwner(stat.uid)) {
        throw new Error(`${at}, on the way to the state directory ${dir}, belongs to another user (uid ${stat.uid}); choose another with --state-dir`);
      }
      if (stat.isDirectory() && (stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
        throw new Error(
          `${at}, on the way to the state directory ${dir}, is writable by other users (mode ${(stat.mode & 0o7777).toString(8)}) and not sticky; choose another with --state-dir`,
        );
      }
    }
  };
  check(dir);
  const real = fs.realpathSync(path.dirname(dir));
  if (real !== path.dirname(dir)) check(path.join(real, path.basename(dir)));
}

/**
 * Creates the state directory (0700) if needed. Trusts it only if it is a
 * real directory, not a symbolic link (whoever controls the link could point
 * it elsewhere after we checked), owned by us, writable by nobody else, on a
 * path nobody else can change (checkAncestors).
 */
export function ensureStateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = fs.lstatSync(dir);
  if (stat.isSymbolicLink()) {
    throw new Error(`state directory ${dir} is a symbolic link; give the real directory (${fs.realpathSync(dir)}) with --state-dir`);
  }
  if (!stat.isDirectory()) throw new Error(`state directory ${dir} is not a directory`);
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
    throw new Error(`state directory ${dir} belongs to another user (uid ${stat.uid}); choose another with --state-dir`);
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new Error(
      `state directory ${dir} is writable by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 700 it or choose another with --state-dir`,
    );
  }
  checkAncestors(dir);
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

/** A token is 43 characters; a file much larger than that is not a token file. */
const MAX_TOKEN_FILE_BYTES = 4096;

/** A token file that is not what it claims to be: the CLI prints the message as its one line. */
function untrusted(file: string, why: string): LiveswapError {
  return new LiveswapError(Status.FAILED_PRECONDITION, `refusing the token file ${file}: ${why}`);
}

interface TokenFileContents {
  token: string;
  /** Identifies the file read, so that removing it removes that file and no other. */
  dev: number;
  ino: number;
}

/**
 * Opens without following a link and without blocking (a FIFO put in its
 * place would hang a plain read forever), then checks what was opened: a
 * regular file of ours that nobody else can read or write. Undefined if
 * there is no file; throws (FAILED_PRECONDITION) for anything else there.
 */
function readTrusted(file: string): TokenFileContents | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw untrusted(file, 'it is a symbolic link');
    throw untrusted(file, `cannot open it (${code ?? (error as Error).message})`);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw untrusted(file, 'it is not a regular file');
    if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
      throw untrusted(file, `it belongs to another user (uid ${stat.uid})`);
    }
    if ((stat.mode & 0o077) !== 0) throw untrusted(file, `other users can read or write it (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`);
    if (stat.size > MAX_TOKEN_FILE_BYTES) throw untrusted(file, `it is ${stat.size} bytes long, too long for a token`);
    const buffer = Buffer.alloc(MAX_TOKEN_FILE_BYTES);
    const length = fs.readSync(fd, buffer, 0, buffer.length, 0);
    return { token: buffer.subarray(0, length).toString('utf8').trim(), dev: stat.dev, ino: stat.ino };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The token in the file, or undefined if there is none. A file that is there
 * but is not a regular 0600 file of ours (a link, a FIFO, another user's)
 * throws a LiveswapError (FAILED_PRECONDITION) that says why.
 */
export function readTokenFile(file: string): string | undefined {
  return readTrusted(file)?.token || undefined;
}

/**
 * `--token-file PATH`: the token in a file the user names, trusted on the
 * same terms as the master's own token files; a missing one is an error.
 */
export function readTokenFileArgument(file: string): string {
  const token = readTokenFile(file);
  if (!token) throw new LiveswapError(Status.INVALID_ARGUMENT, `no token in ${file}: the file is missing or empty`);
  return token;
}

/** `--token -`: the first line of standard input. */
export function readTokenFromStdin(): string {
  const token = fs.readFileSync(0, 'utf8').split('\n')[0]!.trim();
  if (!token) throw new LiveswapError(Status.INVALID_ARGUMENT, '--token - read no token from standard input');
  return token;
}

/**
 * Removes the file if it still holds our token (a later master may have
 * replaced it), and only the very file read: never whatever was put at the
 * path meanwhile. Anything untrustworthy there is left alone (returns false).
 */
export function removeTokenFile(file: string, token: string): boolean {
  let read: TokenFileContents | undefined;
  try {
    read = readTrusted(file);
  } catch {
    return false;
  }
  if (read?.token !== token) return false;
  const now = fs.lstatSync(file, { throwIfNoEntry: false });
  if (now?.dev !== read.dev || now.ino !== read.ino) return false;
  fs.rmSync(file, { force: true });
  return true;
}
