import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/test/helpers). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'bin', 'liveswap.cjs');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

/** Every directory tempDir() made, removed when this test process exits. */
const tempDirs: string[] = [];

/**
 * A fresh private directory for one test. It is removed when the test
 * process exits (so a test that fails half-way leaves nothing behind
 * either), after the test's own cleanup has stopped the masters whose
 * sockets and token files live in it.
 */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveswap-test-'));
  tempDirs.push(dir);
  return dir;
}

/**
 * Token files of the masters this test process starts (and where its CLI runs
 * and clients look for them): a private directory, never the real home.
 * Child processes inherit it through the environment.
 */
export const STATE_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'liveswap-state-'));
process.env.LIVESWAP_STATE_DIR = STATE_DIR;
process.on('exit', () => {
  for (const dir of [STATE_DIR, ...tempDirs]) fs.rmSync(dir, { recursive: true, force: true });
});
