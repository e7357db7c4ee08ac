/**
 * The peers bench's timeline (bench/peers/timeline.ts): requests land in the
 * right 100 ms bucket, and the SVG's bars are as tall as their counts, on
 * scales shared by every panel, with the deploy start where 0 is.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import { bucketize, LAYOUT, niceCeil, timelineSvg, type Bucket, type Panel } from '../bench/peers/timeline.js';

test('bucketize: each sample in the bucket its end falls in; the edges belong to the later bucket; outside is left out', () => {
  const buckets = bucketize(
    [
      { atMs: -201, kind: 'old' }, // before the range
      { atMs: -200, kind: 'old' },
      { atMs: -100.5, kind: 'old' },
      { atMs: -100, kind: 'failed' },
      { atMs: 0, kind: 'new' },
      { atMs: 0, kind: 'old' },
      { atMs: 99.9, kind: 'new' },
      { atMs: 299.9, kind: 'failed' },
      { atMs: 300, kind: 'new' }, // the range's end
    ],
    { fromMs: -200, toMs: 300, bucketMs: 100 },
  );
  assert.deepEqual(buckets, [
    { old: 2, new: 0, failed: 0 },
    { old: 0, new: 0, failed: 1 },
    { old: 1, new: 2, failed: 0 },
    { old: 0, new: 0, failed: 0 },
    { old: 0, new: 0, failed: 1 },
  ]);
});

test('niceCeil: the axis top is the next 1, 2, 2.5 or 5 × 10^k', () => {
  assert.deepEqual([0, 1, 7, 12, 21, 250, 251, 780, 1000].map(niceCeil), [1, 1, 10, 20, 25, 250, 500, 1000, 1000]);
});

interface Bar {
  kind: string;
  bucket: number;
  count: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

function bars(panelSvg: string): Bar[] {
  const pattern = /<rect class="(old|new|failed)" data-bucket="(\d+)" data-count="(\d+)" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/g;
  return [...panelSvg.matchAll(pattern)].map((m) => ({
    kind: m[1]!,
    bucket: Number(m[2]),
    count: Number(m[3]),
    x: Number(m[4]),
    y: Number(m[5]),
    width: Number(m[6]),
    height: Number(m[7]),
  }));
}

const near = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) <= 0.06, `${what}: ${actual}, expected ${expected}`);

test('timelineSvg: bars as tall as their counts on shared scales, old under new, failures in their strip, the deploy at 0', () => {
  const b = (old: number, fresh: number, failed: number): Bucket => ({ old, new: fresh, failed });
  const panels: Panel[] = [
    { title: 'tool A', note: '0 failed', buckets: [b(30, 0, 0), b(20, 25, 0), b(0, 40, 0), b(0, 10, 0)], markers: [{ atMs: 150, label: 'command returned' }] },
    { title: 'tool <B>', note: '7 failed', buckets: [b(30, 0, 0), b(10, 0, 4), b(0, 0, 3), b(0, 12, 0)], markers: [] },
  ];
  const svg = timelineSvg(panels, { fromMs: -100, bucketMs: 100, heading: 'heading', subheading: 'sub', oldLabel: 'v1', newLabel: 'v2' });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="900" height="\d+"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));

  const yMax = 50; // the tallest stack: 20 + 25 = 45
  const failedMax = 5; // the most failures in a bucket: 4
  const plotWidth = LAYOUT.width - LAYOUT.left - LAYOUT.right;
  const barWidth = plotWidth / 4;
  const [, first, second] = svg.split('<g class="panel"');
  assert.ok(first && second, 'two panels');
  for (const [panel, part] of [
    [panels[0]!, first],
    [panels[1]!, second],
  ] as const) {
    const drawn = bars(part);
    const expected = panel.buckets.flatMap((bucket, i) => (['old', 'new', 'failed'] as const).filter((kind) => bucket[kind] > 0).map((kind) => ({ kind, bucket: i, count: bucket[kind] })));
    assert.deepEqual(
      drawn.map(({ kind, bucket, count }) => ({ kind, bucket, count })),
      expected,
      'one bar per non-zero count',
    );
    for (const bar of drawn) {
      const scale = bar.kind === 'failed' ? LAYOUT.stripHeight / failedMax : LAYOUT.barsHeight / yMax;
      near(bar.height, bar.count * scale, `${panel.title} ${bar.kind} bucket ${bar.bucket} height`);
      near(bar.x, LAYOUT.left + bar.bucket * barWidth + 0.5, `${panel.title} bucket ${bar.bucket} x`);
    }
    // Old from the axis, new on top of it, in the same column.
    const oldBars = drawn.filter((bar) => bar.kind === 'old');
    const axis = oldBars[0]!.y + oldBars[0]!.height;
    for (const bar of oldBars) near(bar.y + bar.height, axis, 'old bars stand on the axis');
    for (const bar of drawn.filter((d) => d.kind === 'new')) {
      const under = oldBars.find((o) => o.bucket === bar.bucket);
      near(bar.y + bar.height, under ? under.y : axis, `new bar of bucket ${bar.bucket} stacked`);
    }
    // The failures' count written over their bars.
    for (const bar of drawn.filter((d) => d.kind === 'failed')) assert.match(part, new RegExp(`>${bar.count}</text>`));
    // The deploy start at 0: one bucket (100 ms of 400) from the left.
    assert.match(part, new RegExp(`<line x1="${LAYOUT.left + plotWidth / 4}" y1="[\\d.]+" x2="${LAYOUT.left + plotWidth / 4}" [^>]*class="deploy-start"`));
  }
  // A panel's marker, at its time.
  const r1 = (value: number) => Math.round(value * 10) / 10;
  assert.match(first, new RegExp(`<line x1="${r1(LAYOUT.left + (250 / 400) * plotWidth)}" [^>]*class="marker"`));
  assert.match(first, />command returned</);
  assert.doesNotMatch(second, /class="marker"/);
  // Text is escaped; the axes and the legend are labelled.
  assert.match(svg, />tool &lt;B&gt;</);
  assert.match(svg, /requests \/ 100 ms/);
  assert.match(svg, /time since the deploy command started/);
  assert.match(svg, /answered by the old version \(v1\)/);
  assert.match(svg, /answered by the new version \(v2\)/);
  // The y axis tops: the shared scale and the failures' scale.
  assert.match(first, />50<\/text>/);
  assert.match(first, />5<\/text>/);
  // Nothing about the machine it was drawn on.
  assert.ok(!svg.includes(os.hostname()));
  assert.ok(!svg.includes(process.cwd()));
});
