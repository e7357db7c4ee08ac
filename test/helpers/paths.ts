import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/test/helpers). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'bin', 'liveswap.js');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

/** A fresh private directory for one test, removed by the caller's cleanup. */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'liveswap-test-'));
}

/**
 * Token files of the masters this test process starts (and where its CLI runs
 * and clients look for them): a private directory, never the real home.
 * Child processes inherit it through the environment.
 */
export const STATE_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'liveswap-state-'));
process.env.LIVESWAP_STATE_DIR = STATE_DIR;
process.on('exit', () => fs.rmSync(STATE_DIR, { recursive: true, force: true }));
