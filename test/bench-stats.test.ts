/**
 * The benchmark's steady-state verdict rests on bracketedRatios: each
 * liveswap slice against the plain slices on either side. These pin what it
 * cancels (a level change of the machine between slices) and what it keeps
 * (a real difference between servers); and on groupedMedianInterval, whose
 * interval has to carry the differences between the segments' processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bracketedRatios, groupedMedianInterval } from '../bench/steady-state.js';

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

test('the grouped interval carries the differences between segments that the pooled values hide', () => {
  // Four segments of 40 comparisons each, the same spread within each, but every segment's processes sit at their own level.
  const within = Array.from({ length: 40 }, (_, i) => (i - 19.5) * 0.002);
  const levels = [0.96, 0.99, 1.01, 1.04];
  const groups = levels.map((level) => within.map((d) => level + d));
  const [low, high] = groupedMedianInterval(groups);
  // All 160 in one group: resampling the pooled values alone, as if they were independent.
  const [pooledLow, pooledHigh] = groupedMedianInterval([groups.flat()]);
  assert.ok(low <= 0.99 && high >= 1.01, `grouped interval ${low}–${high} should span the segments' levels`);
  assert.ok(high - low > 2 * (pooledHigh - pooledLow), `grouped ${high - low} should be far wider than pooled ${pooledHigh - pooledLow}`);
  // Segments that agree give an interval no wider than their own spread allows.
  const agreeing = levels.map(() => within.map((d) => 1 + d));
  const [agreeLow, agreeHigh] = groupedMedianInterval(agreeing);
  assert.ok(agreeLow >= 0.98 && agreeHigh <= 1.02, `agreeing segments gave ${agreeLow}–${agreeHigh}`);
});

test('an empty segment is ignored, and no segments at all give no interval', () => {
  assert.deepEqual(groupedMedianInterval([[1, 1, 1], []]), [1, 1]);
  assert.ok(groupedMedianInterval([]).every(Number.isNaN));
});
