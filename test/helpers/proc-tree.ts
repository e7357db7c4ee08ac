/**
 * Process-tree and gRPC-error helpers for the hook, watch and operation-lock tests.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { status } from '@grpc/grpc-js';
import { LiveswapClientError } from '../../src/client/index.js';

/** Direct children of `pid` right now (Linux /proc; an empty list where /proc is missing). */
export function childPids(pid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === pid) children.push(Number(entry));
  }
  return children.sort((a, b) => a - b);
}

/** Awaits `promise`, expects it to reject with a LiveswapClientError of `code` whose message matches `message`. */
export async function expectGrpcError(promise: Promise<unknown>, code: status, message: RegExp): Promise<LiveswapClientError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `expected a rejection with code ${code}, but the call succeeded`);
  assert.ok(caught instanceof LiveswapClientError, `expected a LiveswapClientError, got ${String(caught)}`);
  assert.equal(caught.code, code, `expected code ${code}, got ${caught.codeName}: ${caught.message}`);
  assert.match(caught.message, message);
  return caught;
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}
