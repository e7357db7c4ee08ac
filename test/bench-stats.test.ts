/**
 * The benchmark's steady-state verdict rests on bracketedRatios: each
 * liveswap slice against the plain slices on either side. These pin what it
 * cancels (a level change of the machine between slices) and what it keeps
 * (a real difference between servers).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bracketedRatios } from '../bench/steady-state.js';

type Server = 'plain' | 'liveswap' | 'control';
const ORDER: Server[] = ['plain', 'liveswap', 'control', 'control', 'liveswap', 'plain', 'liveswap', 'plain', 'control'];

/** Slices in ORDER, repeated, on a machine whose speed at slice i is speed(i); liveswap runs at `factor` of plain. */
function slices(rounds: number, speed: (i: number) => number, factor: number) {
  return Array.from({ length: rounds * ORDER.length }, (_, i) => {
    const server = ORDER[i % ORDER.length]!;
    return { server, rps: speed(i) * (server === 'liveswap' ? factor : 1) };
  });
}

const close = (actual: number[], expected: number, tolerance: number) => {
  for (const value of actual) assert.ok(Math.abs(value - expected) <= tolerance, `${value} is not within ${tolerance} of ${expected}`);
};

test('a machine that speeds up steadily cancels out; a 5% slower server reads 0.95', () => {
  // 1% faster every slice: comparing with one neighbour only would read 0.99 or 1.01.
  const drifting = (i: number) => 10_000 * 1.01 ** i;
  close(bracketedRatios(slices(4, drifting, 1), 'liveswap', ['plain', 'control']), 1, 0.0001);
  close(bracketedRatios(slices(4, drifting, 0.95), 'liveswap', ['plain', 'control']), 0.95, 0.0001);
});

test('neighbours are the nearest slices of the named servers, skipping the others', () => {
  const run = [
    { server: 'plain', rps: 100 },
    { server: 'liveswap', rps: 90 },
    { server: 'liveswap', rps: 120 },
    { server: 'control', rps: 200 },
    { server: 'plain', rps: 300 },
  ] as const;
  // 90 / mean(100, 200); 120 / mean(100, 200).
  assert.deepEqual(bracketedRatios(run, 'liveswap', ['plain', 'control']), [0.6, 0.8]);
  // The control against plain only: 200 / mean(100, 300).
  assert.deepEqual(bracketedRatios(run, 'control', ['plain']), [1]);
});

test('a slice with no neighbour on one side is left out, not compared with one side only', () => {
  const run = [
    { server: 'liveswap', rps: 50 },
    { server: 'plain', rps: 100 },
    { server: 'liveswap', rps: 100 },
    { server: 'plain', rps: 100 },
    { server: 'liveswap', rps: 50 },
  ] as const;
  assert.deepEqual(bracketedRatios(run, 'liveswap', ['plain']), [1]);
});
