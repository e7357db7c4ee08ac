/**
 * `liveswap --watch` on a terminal: the worker table, redrawn in place as
 * the WatchWorkers stream reports transitions.
 *
 * WatchModel is the pool as the stream tells it (a snapshot, then each
 * transition applied) and renders to lines: pure, so it is tested without a
 * terminal. watchOnTerminal() does the terminal part: hide the cursor, move
 * up over the last frame and rewrite it (throttled; once a second for the
 * uptime), and always give the cursor back.
 */
import type { Transition, WatchWorkersResponse, Worker, WorkerCounts } from '../gen/liveswap/v1/liveswap.js';
import { WorkerState } from '../gen/liveswap/v1/liveswap.js';
import { describeTransition } from './format.js';
import { workerTableLines } from './worker-table.js';

/** An exited worker stays in the table this long, so its exit can be read. */
export const EXITED_LINGER_MS = 10_000;
/** At most one redraw per this many ms, however fast events come. */
export const REDRAW_MIN_INTERVAL_MS = 100;
/** Redraw at least this often, so uptimes tick. */
export const TICK_MS = 1000;
const RECENT_EVENTS = 3;

const ESC = '\x1b[';
export const HIDE_CURSOR = `${ESC}?25l`;
export const SHOW_CURSOR = `${ESC}?25h`;
const CLEAR_LINE = `${ESC}2K`;
const CLEAR_BELOW = `${ESC}J`;
const up = (lines: number) => `${ESC}${lines}A\r`;

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

function clock(time: Date): string {
  return time.toISOString().slice(11, 19);
}

export class WatchModel {
  private readonly workers = new Map<number, { worker: Worker; exitedAt?: number }>();
  private counts: WorkerCounts = { starting: 0, ready: 0, draining: 0 };
  private sequence = 0;
  private lastEventAt: Date | undefined;
  private readonly recent: string[] = [];

  constructor(private readonly endpoint: string) {}

  apply(item: WatchWorkersResponse, now: number): void {
    const event = item.event;
    if (event?.$case === 'snapshot') {
      this.workers.clear();
      for (const worker of event.snapshot.workers) this.workers.set(worker.id, { worker });
      this.counts = event.snapshot.counts ?? this.counts;
      this.sequence = event.snapshot.sequence;
    } else if (event?.$case === 'transition') {
      this.applyTransition(event.transition, now);
    }
  }

  private applyTransition(t: Transition, now: number): void {
    const worker = t.worker!;
    const exited = worker.state === WorkerState.WORKER_STATE_EXITED;
    this.workers.set(worker.id, { worker, ...(exited && { exitedAt: now }) });
    this.counts = t.counts ?? this.counts;
    this.sequence = t.sequence;
    this.lastEventAt = t.time;
    this.recent.push(`${t.time ? clock(t.time) : '--:--:--'} ${describeTransition(t)}`);
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
  }

  /** The frame to show at `now`, no line wider than `width`. */
  lines(now: number, width: number): string[] {
    for (const [id, entry] of this.workers) {
      if (entry.exitedAt !== undefined && now - entry.exitedAt >= EXITED_LINGER_MS) this.workers.delete(id);
    }
    const { starting, ready, draining } = this.counts;
    const last = this.lastEventAt ? ` at ${clock(this.lastEventAt)}` : '';
    const lines = [
      `liveswap --watch ${this.endpoint}: ${ready} ready, ${starting} starting, ${draining} draining; event #${this.sequence}${last}`,
      '',
    ];
    const workers = [...this.workers.values()].map((entry) => entry.worker);
    if (workers.length > 0) lines.push(...workerTableLines(workers, now, { width }));
    else lines.push('no workers');
    if (this.recent.length > 0) lines.push('', ...this.recent);
    lines.push('', 'Ctrl-C to quit');
    return lines.map((line) => cut(line, width));
  }
}

export interface Terminal {
  write(text: string): unknown;
  readonly columns?: number;
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

/**
 * Draws the stream on the terminal until it ends (the master stopped, or the
 * caller aborted the stream). Throws what the stream throws, after giving
 * the cursor back.
 */
export async function watchOnTerminal(
  events: AsyncIterable<WatchWorkersResponse>,
  out: Terminal,
  endpoint: string,
): Promise<void> {
  const model = new WatchModel(endpoint);
  let drawn = 0;
  let lastDraw = 0;
  let pending: NodeJS.Timeout | undefined;

  const draw = () => {
    if (pending) clearTimeout(pending);
    pending = undefined;
    lastDraw = Date.now();
    // One column spare: a line that fills the last column wraps on some terminals.
    const width = Math.max(20, (out.columns || 80) - 1);
    const lines = model.lines(lastDraw, width);
    let frame = drawn > 0 ? up(drawn) : '';
    for (const line of lines) frame += `${CLEAR_LINE}${line}\n`;
    out.write(frame + CLEAR_BELOW);
    drawn = lines.length;
  };
  const soon = () => {
    if (pending) return;
    pending = setTimeout(draw, Math.max(0, lastDraw + REDRAW_MIN_INTERVAL_MS - Date.now()));
  };
  // After a resize the old frame may have reflowed: start over on a clean screen.
  const onResize = () => {
    out.write(`${ESC}2J${ESC}H`);
    drawn = 0;
    soon();
  };
  const restoreCursor = () => out.write(SHOW_CURSOR);

  out.write(HIDE_CURSOR);
  process.once('exit', restoreCursor);
  out.on('resize', onResize);
  const tick = setInterval(() => drawn > 0 && soon(), TICK_MS);
  try {
    for await (const item of events) {
      model.apply(item, Date.now());
      soon();
    }
  } finally {
    clearInterval(tick);
    out.off('resize', onResize);
    // The final state, whatever is pending; nothing if the stream failed before its snapshot.
    if (drawn > 0 || pending) draw();
    restoreCursor();
    process.off('exit', restoreCursor);
  }
}
