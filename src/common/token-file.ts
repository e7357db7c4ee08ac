/**
 * Where a master keeps the token of its TCP control service, so a client on
 * the same machine (same user) finds it with no flags.
 *
 * State directory, first that applies: the `stateDir` option (`--state-dir`),
 * `$LIVESWAP_STATE_DIR`, `$XDG_RUNTIME_DIR/liveswap`, `~/.liveswap`. It is
 * created with mode 0700. One file per control address, e.g.
 * `127.0.0.1_3000.token` (`::1` becomes `--1`), mode 0600, removed when the
 * master stops cleanly. Shared by the master and every client.
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

export function tokenFileName(address: string, port: number): string {
  return `${address.replace(/:/g, '-')}_${port}.token`;
}

export function tokenFilePath(address: string, port: number, explicitStateDir?: string): string {
  return path.join(stateDir(explicitStateDir), tokenFileName(address, port));
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
