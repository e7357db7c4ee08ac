/**
 * The peers bench's timeline: requests per bucket of time by what answered
 * them (the old version, the new one, or nothing: a failure), one panel per
 * tool, drawn as a plain SVG string. Pure: no clock, no files, no processes
 * (test/bench-peers-svg.test.ts checks the bars against the counts).
 */

/** One request of the load, placed at the moment it ended, in ms since the deploy command started. */
export interface Sample {
  atMs: number;
  kind: 'old' | 'new' | 'failed';
}

export interface Bucket {
  old: number;
  new: number;
  failed: number;
}

export interface Range {
  /** Start of the first bucket, in ms since the deploy command started (negative: before it). */
  fromMs: number;
  /** End of the last bucket (the last bucket may end past it). */
  toMs: number;
  bucketMs: number;
}

/** Counts per bucket: bucket i holds the samples with fromMs + i·bucketMs ≤ atMs < fromMs + (i+1)·bucketMs; samples outside the range are left out. */
export function bucketize(samples: readonly Sample[], { fromMs, toMs, bucketMs }: Range): Bucket[] {
  const buckets = Array.from({ length: Math.max(0, Math.ceil((toMs - fromMs) / bucketMs)) }, () => ({ old: 0, new: 0, failed: 0 }));
  for (const { atMs, kind } of samples) {
    const i = Math.floor((atMs - fromMs) / bucketMs);
    if (i >= 0 && i < buckets.length) buckets[i]![kind]++;
  }
  return buckets;
}

/** The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ value (1 for 0 and below): the top of an axis. */
export function niceCeil(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

export interface Panel {
  /** The tool, e.g. "PM2 reload". */
  title: string;
  /** One line of figures after the title, e.g. "38 failed, slow 8 of 8". */
  note: string;
  buckets: Bucket[];
  /** Vertical lines besides the deploy start (at 0): e.g. where the deploy command returned. */
  markers: { atMs: number; label: string }[];
}

export interface TimelineOptions {
  /** Start of the first bucket, ms since the deploy command started, and the bucket width (every panel the same). */
  fromMs: number;
  bucketMs: number;
  heading: string;
  /** A second line under the heading: what ran, on what. */
  subheading: string;
  oldLabel: string;
  newLabel: string;
}

/** The geometry, exported for the test: every panel has a bar area and, under it, a strip for the failures. */
export const LAYOUT = {
  width: 900,
  left: 70,
  right: 20,
  headerHeight: 76,
  panelTitleHeight: 22,
  barsHeight: 120,
  stripGap: 12,
  stripHeight: 30,
  ticksHeight: 20,
  panelGap: 14,
  footerHeight: 30,
} as const;

const COLORS = { old: '#8da0cb', new: '#66c2a5', failed: '#d7301f', axis: '#333', grid: '#ddd', text: '#222', marker: '#555' };

const num = (value: number): string => String(Math.round(value * 10) / 10);
const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const text = (x: number, y: number, content: string, attrs = ''): string => `<text x="${num(x)}" y="${num(y)}"${attrs ? ` ${attrs}` : ''}>${escape(content)}</text>`;
const line = (x1: number, y1: number, x2: number, y2: number, attrs: string): string => `<line x1="${num(x1)}" y1="${num(y1)}" x2="${num(x2)}" y2="${num(y2)}" ${attrs}/>`;

/** Seconds on the time axis: "−1 s", "0", "2.5 s". */
function secondsLabel(ms: number): string {
  if (ms === 0) return '0';
  const s = Math.round(ms) / 1000;
  return `${s < 0 ? '−' : ''}${Math.abs(s)} s`;
}

/**
 * The small multiples: one panel per tool, all on the same time axis and the
 * same scales, so that their bars compare. Old and new stack up from the
 * axis; the failures, far fewer, get a strip of their own under it, with its
 * own scale and the count written over each bar.
 */
export function timelineSvg(panels: readonly Panel[], { fromMs, bucketMs, heading, subheading, oldLabel, newLabel }: TimelineOptions): string {
  const L = LAYOUT;
  const plotWidth = L.width - L.left - L.right;
  const buckets = Math.max(1, ...panels.map((p) => p.buckets.length));
  const toMs = fromMs + buckets * bucketMs;
  const x = (ms: number) => L.left + ((ms - fromMs) / (toMs - fromMs)) * plotWidth;
  const barWidth = plotWidth / buckets;
  const barGap = barWidth > 4 ? 1 : 0;
  const yMax = niceCeil(Math.max(0, ...panels.flatMap((p) => p.buckets.map((b) => b.old + b.new))));
  const failedMax = niceCeil(Math.max(0, ...panels.flatMap((p) => p.buckets.map((b) => b.failed))));
  const panelHeight = L.panelTitleHeight + L.barsHeight + L.stripGap + L.stripHeight + L.ticksHeight + L.panelGap;
  const height = L.headerHeight + panels.length * panelHeight + L.footerHeight;
  // Ticks every 0.5 s, or every second on a long axis.
  const tickMs = toMs - fromMs > 8000 ? 1000 : 500;
  const ticks: number[] = [];
  for (let t = Math.ceil(fromMs / tickMs) * tickMs; t <= toMs; t += tickMs) ticks.push(t);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${num(height)}" viewBox="0 0 ${L.width} ${num(height)}" font-family="sans-serif" font-size="11" fill="${COLORS.text}">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    text(L.left, 18, heading, 'font-size="14" font-weight="bold"'),
    text(L.left, 35, subheading),
  ];
  // Legend.
  const legend: [string, string][] = [
    [COLORS.old, `answered by the old version (${oldLabel})`],
    [COLORS.new, `answered by the new version (${newLabel})`],
    [COLORS.failed, 'failed (own scale, count above the bar)'],
  ];
  let lx = L.left;
  for (const [color, label] of legend) {
    out.push(`<rect x="${num(lx)}" y="46" width="12" height="12" fill="${color}"/>`, text(lx + 17, 56, label));
    lx += 34 + label.length * 5.6;
  }
  out.push(line(lx, 46, lx, 58, `stroke="${COLORS.marker}" stroke-dasharray="4 3"`), text(lx + 5, 56, 'deploy started'));

  panels.forEach((panel, p) => {
    const top = L.headerHeight + p * panelHeight;
    const barsTop = top + L.panelTitleHeight;
    const axisY = barsTop + L.barsHeight;
    const stripTop = axisY + L.stripGap;
    const stripBottom = stripTop + L.stripHeight;
    out.push(`<g class="panel" data-title="${escape(panel.title)}">`);
    out.push(`<text x="${L.left}" y="${num(top + 15)}"><tspan font-size="13" font-weight="bold">${escape(panel.title)}</tspan><tspan dx="10">${escape(panel.note)}</tspan></text>`);
    // Grid and y axis of the bars.
    for (const value of [0, yMax / 2, yMax]) {
      const y = axisY - (value / yMax) * L.barsHeight;
      out.push(line(L.left, y, L.left + plotWidth, y, `stroke="${value === 0 ? COLORS.axis : COLORS.grid}"`));
      out.push(text(L.left - 6, y + 4, String(value), 'text-anchor="end"'));
    }
    out.push(line(L.left, barsTop, L.left, stripBottom, `stroke="${COLORS.axis}"`));
    // Bars: old from the axis up, new stacked on it.
    panel.buckets.forEach((b, i) => {
      const bx = num(L.left + i * barWidth + barGap / 2);
      const bw = num(barWidth - barGap);
      let y = axisY;
      for (const kind of ['old', 'new'] as const) {
        if (b[kind] === 0) continue;
        const h = (b[kind] / yMax) * L.barsHeight;
        y -= h;
        out.push(`<rect class="${kind}" data-bucket="${i}" data-count="${b[kind]}" x="${bx}" y="${num(y)}" width="${bw}" height="${num(h)}" fill="${COLORS[kind]}"/>`);
      }
      if (b.failed > 0) {
        const h = (b.failed / failedMax) * L.stripHeight;
        out.push(`<rect class="failed" data-bucket="${i}" data-count="${b.failed}" x="${bx}" y="${num(stripBottom - h)}" width="${bw}" height="${num(h)}" fill="${COLORS.failed}"/>`);
        out.push(text(L.left + (i + 0.5) * barWidth, stripBottom - h - 2, String(b.failed), `text-anchor="middle" font-size="9" fill="${COLORS.failed}"`));
      }
    });
    // The failures' strip: its baseline and scale.
    out.push(line(L.left, stripBottom, L.left + plotWidth, stripBottom, `stroke="${COLORS.axis}"`));
    out.push(text(L.left - 6, stripBottom + 3, '0', `text-anchor="end" fill="${COLORS.failed}"`), text(L.left - 6, stripTop + 8, String(failedMax), `text-anchor="end" fill="${COLORS.failed}"`));
    out.push(line(L.left - 3, stripTop, L.left, stripTop, `stroke="${COLORS.failed}"`));
    out.push(text(L.left - 30, stripTop + L.stripHeight / 2 + 4, 'failed', `text-anchor="end" fill="${COLORS.failed}"`));
    out.push(text(16, barsTop + L.barsHeight / 2, `requests / ${bucketMs} ms`, `text-anchor="middle" transform="rotate(-90 16 ${num(barsTop + L.barsHeight / 2)})"`));
    // Time ticks.
    for (const t of ticks) {
      out.push(line(x(t), stripBottom, x(t), stripBottom + 4, `stroke="${COLORS.axis}"`));
      out.push(text(x(t), stripBottom + 15, secondsLabel(t), 'text-anchor="middle"'));
    }
    // The deploy start, and the panel's own markers.
    if (0 >= fromMs && 0 <= toMs) out.push(line(x(0), barsTop - 4, x(0), stripBottom, `class="deploy-start" stroke="${COLORS.marker}" stroke-dasharray="4 3"`));
    for (const marker of panel.markers) {
      if (marker.atMs < fromMs || marker.atMs > toMs) continue;
      out.push(line(x(marker.atMs), barsTop - 4, x(marker.atMs), stripBottom, `class="marker" stroke="${COLORS.marker}" stroke-dasharray="1 2"`));
      out.push(text(x(marker.atMs) + 3, barsTop + 6, marker.label, `font-size="10" fill="${COLORS.marker}"`));
    }
    out.push('</g>');
  });
  out.push(text(L.left + plotWidth / 2, height - 10, `time since the deploy command started (${bucketMs} ms buckets, by when each request ended)`, 'text-anchor="middle"'));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
