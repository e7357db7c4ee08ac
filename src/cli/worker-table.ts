/**
 * The worker table, shared by `--status` (printed once) and `--watch` on a
 * terminal (redrawn in place). A pure function of the workers, the time and
 * the width: no clock, no terminal, so a test can give it both.
 */
import { WorkerState, type Worker } from '../gen/liveswap/v1/liveswap.js';
import { escapeControl } from '../common/escape.js';

export const TABLE_COLUMNS = ['ID', 'PID', 'STATE', 'GEN', 'UPTIME', 'RESTARTS', 'TARGET', 'REASON'] as const;

/** The narrowest the TARGET column gets before the line itself is cut. */
const MIN_TARGET_WIDTH = 16;

export function stateName(state: WorkerState): string {
  return (WorkerState[state] ?? 'UNKNOWN').replace('WORKER_STATE_', '').toLowerCase();
}

/** 0s … 59s, 1m0s … 59m59s, 1h0m … */
export function formatUptime(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}

/**
 * Why the worker is in its state; for an exited worker, how it exited, unless
 * the reason says so already. Control characters escaped: the reason can be a
 * line of the worker's stderr.
 */
export function reasonText(worker: Worker): string {
  const reason = escapeControl(worker.reason);
  if (worker.state !== WorkerState.WORKER_STATE_EXITED) return reason;
  const how = worker.exitSignal || (worker.exitCode !== undefined ? `code ${worker.exitCode}` : '');
  return how && !reason.includes(how) ? `${reason} (${how})` : reason;
}

/** "…/end/of/a/long/path" in at most `width` characters. */
function cutLeft(text: string, width: number): string {
  return text.length <= width ? text : `…${text.slice(text.length - width + 1)}`;
}

/** "start of a long line…" in at most `width` characters. */
function cutRight(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

export interface TableOptions {
  /**
   * The widest a line may be (a terminal's columns). Long targets are
   * shortened from the left first, then lines are cut, so that no line wraps:
   * an in-place redraw counts lines. Unlimited by default.
   */
  width?: number;
}

/**
 * One header line and one line per worker. Uptime counts from the fork to
 * `now` (ms since the epoch) while the worker lives; an exited worker shows "-".
 */
export function workerTableLines(workers: readonly Worker[], now: number, options: TableOptions = {}): string[] {
  const rows: string[][] = [
    [...TABLE_COLUMNS],
    ...workers.map((w) => [
      String(w.id),
      String(w.pid),
      stateName(w.state),
      String(w.generation),
      w.state === WorkerState.WORKER_STATE_EXITED || !w.startedAt ? '-' : formatUptime(now - w.startedAt.getTime()),
      String(w.restarts),
      escapeControl(w.target),
      reasonText(w),
    ]),
  ];
  const widths = TABLE_COLUMNS.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const target = TABLE_COLUMNS.indexOf('TARGET');
  const width = options.width;
  if (width !== undefined) {
    // Everything left of TARGET, the separators, and at least the REASON header.
    const fixed = widths.slice(0, target).reduce((sum, w) => sum + w + 2, 0) + 2 + 'REASON'.length;
    widths[target] = Math.max(MIN_TARGET_WIDTH, Math.min(widths[target]!, width - fixed));
  }
  return rows.map((row) => {
    const cells = row.map((cell, i) => (i === target ? cutLeft(cell, widths[i]!) : cell).padEnd(widths[i]!));
    const line = cells.join('  ').trimEnd();
    return width === undefined ? line : cutRight(line, width);
  });
}

export function workerTable(workers: readonly Worker[], now = Date.now()): string {
  return workerTableLines(workers, now).join('\n');
}
